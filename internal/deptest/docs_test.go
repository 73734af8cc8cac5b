package deptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPackageDocs checks that every package has a package comment and
// every exported name a doc comment that starts with the name.
func TestPackageDocs(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "deploy" || name == "docs") {
			return filepath.SkipDir
		}
		checkPackage(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkPackage(t *testing.T, dir string) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, parser.ParseComments)
	if err != nil {
		t.Errorf("%s: %v", dir, err)
		return
	}
	for _, pkg := range pkgs {
		hasDoc := false
		for fileName, f := range pkg.Files {
			if f.Doc != nil {
				hasDoc = true
			}
			if strings.HasSuffix(fileName, ".pb.go") {
				continue // generated
			}
			checkFile(t, fset, f)
		}
		if !hasDoc {
			t.Errorf("package %s (%s) has no package comment", pkg.Name, dir)
		}
	}
}

func checkFile(t *testing.T, fset *token.FileSet, f *ast.File) {
	report := func(pos token.Pos, name string, doc *ast.CommentGroup) {
		if doc == nil {
			t.Errorf("%s: exported %s has no doc comment", fset.Position(pos), name)
			return
		}
		text := doc.Text()
		if !strings.HasPrefix(text, name+" ") && !strings.HasPrefix(text, "A "+name+" ") && !strings.HasPrefix(text, "An "+name+" ") {
			t.Errorf("%s: the doc comment of %s does not start with its name: %q", fset.Position(pos), name, firstLine(text))
		}
	}
	for _, decl := range f.Decls {
		switch d := decl.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() || (d.Recv != nil && !receiverExported(d.Recv)) {
				continue
			}
			report(d.Pos(), d.Name.Name, d.Doc)
		case *ast.GenDecl:
			for _, spec := range d.Specs {
				switch s := spec.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						doc := s.Doc
						if doc == nil {
							doc = d.Doc
						}
						report(s.Pos(), s.Name.Name, doc)
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						// A grouped const or var block may be documented as a
						// whole; a lone one needs its own comment.
						if n.IsExported() && s.Doc == nil && d.Doc == nil && s.Comment == nil {
							t.Errorf("%s: exported %s has no doc comment", fset.Position(n.Pos()), n.Name)
						}
					}
				}
			}
		}
	}
}

func receiverExported(recv *ast.FieldList) bool {
	if len(recv.List) == 0 {
		return false
	}
	typ := recv.List[0].Type
	for {
		switch e := typ.(type) {
		case *ast.StarExpr:
			typ = e.X
		case *ast.IndexExpr:
			typ = e.X
		case *ast.IndexListExpr:
			typ = e.X
		case *ast.Ident:
			return e.IsExported()
		default:
			return true
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

package transport

// MaxNameLength and MaxClientIDLength bound the names of PROTOCOL.md's
// addressing: /ws/{kind}/{name}?client_id=ID.
const (
	MaxNameLength     = 128
	MaxClientIDLength = 64
)

// ValidName reports whether s may be a store kind or a store name:
// 1-128 characters of [A-Za-z0-9._-].
func ValidName(s string) bool {
	return validChars(s, MaxNameLength, true)
}

// ValidClientID reports whether s may be a client id: 1-64 characters of
// [A-Za-z0-9_-].
func ValidClientID(s string) bool {
	return validChars(s, MaxClientIDLength, false)
}

func validChars(s string, max int, dot bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '.' && dot:
		default:
			return false
		}
	}
	return true
}

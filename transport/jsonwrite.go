package transport

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: '"' and '\\' are escaped,
// control characters become \n, \r, \t or \u00XX, U+2028 and U+2029 are
// escaped (for JavaScript), and invalid UTF-8 becomes \ufffd, as
// encoding/json does. HTML characters are left as they are.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// errNonFinite is returned for NaN and infinities, which JSON cannot carry.
var errNonFinite = errors.New("NaN and infinities cannot be encoded")

// appendJSONFloat appends f as a JSON number that always reads as a float:
// it has a decimal point or an exponent ("3.0", "1.5e+21", "1.0e-07").
// bits is 32 or 64, the size of the Go value, so that a float32 is written
// with its shortest exact digits.
func appendJSONFloat(dst []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, errNonFinite
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// Give the mantissa a decimal point: "1e+21" becomes "1.0e+21".
		mant := start
		for mant < len(dst) && dst[mant] != 'e' {
			if dst[mant] == '.' {
				return dst, nil
			}
			mant++
		}
		dst = append(dst, 0, 0)
		copy(dst[mant+2:], dst[mant:len(dst)-2])
		dst[mant], dst[mant+1] = '.', '0'
		return dst, nil
	}
	for _, c := range dst[start:] {
		if c == '.' {
			return dst, nil
		}
	}
	return append(dst, '.', '0'), nil
}

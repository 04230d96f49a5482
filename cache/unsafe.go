package cache

import "unsafe"

// unsafeString views b as a string without copying. Only for decoding a value that is read
// within its transaction; every string kept beyond it is copied (see internString).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

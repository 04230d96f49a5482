package cache

import "unsafe"

// unsafeString views b as a string without copying. Only for decoding a value that is read
// within its transaction; every string kept beyond it is copied (see decoder.finish).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// bytesString views b as a string. b must never be written afterwards: the decoder gives each
// record one buffer holding all its strings' bytes and hands out strings over it.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

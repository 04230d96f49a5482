package tollgate

// Codes (tiers, platforms, features) and action names are checked by hand rather than by
// regular expression: the check runs on every decision request, where the regexp engine
// cost more than the rest of the validation together. names_test.go holds them to the
// syntax below.

// codeSyntax is what isCode accepts, for error messages.
const codeSyntax = `^[a-z][a-z0-9_]{0,63}$`

// actionSyntax is what isAction accepts: one to four codes joined by dots.
const actionSyntax = `^[a-z][a-z0-9_]{0,63}(\.[a-z][a-z0-9_]{0,63}){0,3}$`

const maxCodeLen = 64

// isCode reports whether s matches codeSyntax.
func isCode(s string) bool {
	if len(s) == 0 || len(s) > maxCodeLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// isAction reports whether s matches actionSyntax.
func isAction(s string) bool {
	segments := 0
	for start := 0; ; {
		end := start
		for end < len(s) && s[end] != '.' {
			end++
		}
		segments++
		if segments > 4 || !isCode(s[start:end]) {
			return false
		}
		if end == len(s) {
			return true
		}
		start = end + 1
	}
}

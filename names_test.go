package tollgate

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// isCode and isAction accept exactly what their documented regular expressions accept.
func TestNamesMatchTheirSyntax(t *testing.T) {
	code, action := regexp.MustCompile(codeSyntax), regexp.MustCompile(actionSyntax)
	cases := []string{"", "a", "order", "order.create", "order_history.view", "a.b.c.d", "a.b.c.d.e", "A", "1a",
		"a-b", "a..b", ".a", "a.", "a.1", "a_1.b_2", "é", "a b", strings.Repeat("a", 64), strings.Repeat("a", 65),
		strings.Repeat("a", 64) + ".b", "a." + strings.Repeat("b", 65), "a\n", "_a"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab9_.A-"
	for range 20_000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := isCode(s), code.MatchString(s); got != want {
			t.Errorf("isCode(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := isAction(s), action.MatchString(s); got != want {
			t.Errorf("isAction(%q) = %v, regexp says %v", s, got, want)
		}
	}
}

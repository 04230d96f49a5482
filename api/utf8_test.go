package api_test

import (
	"strings"
	"testing"
)

// Invalid UTF-8 in a JSON body used to be accepted: the fast check decoder fell back to
// encoding/json, which replaces invalid bytes with U+FFFD, so distinct byte strings named the
// same (different) vendor. Found by the cmd/tollgate hostile-input table.
func TestInvalidUTF8BodyIsRefused(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ path, body string }{
		{"/v1/check", "{\"vendor_id\":\"1\xc0\xaf\",\"action\":\"feature.use\",\"feature\":\"api_access\"}"},
		{"/v1/check", "{\"vendor_id\":\"1\",\"action\":\"feature.use\",\"feature\":\"api\xff_access\"}"},
		{"/v1/usage", "{\"vendor_id\":\"1\xed\xa0\x80\",\"metric\":\"orders\",\"delta\":1,\"idempotency_key\":\"k\"}"},
	} {
		r := e.do("POST", e.decision+tc.path, tc.body)
		if r.Status != 400 || !strings.Contains(string(r.Body), "UTF-8") {
			t.Errorf("%s %q: %d %s, want 400 naming UTF-8", tc.path, tc.body, r.Status, r.Body)
		}
	}
	r := e.admin("PUT", e.decision+"/v1/vendors/9", "{\"tier\":\"essential\",\"status\":\"active\",\"cancellation_reason\":\"\xff\"}")
	if r.Status != 400 {
		t.Errorf("admin PUT with invalid UTF-8: %d %s", r.Status, r.Body)
	}
}

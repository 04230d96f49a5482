package tollgate

import "testing"

// The ASCII fast path may only accept ids the full character check accepts: every byte value
// alone, leading, inside and trailing, and some multi-byte ids the fast path leaves to it.
func TestPlainVendorIDAcceptsOnlyWhatTheFullCheckAccepts(t *testing.T) {
	var ids []string
	for b := range 256 {
		c := string([]byte{byte(b)})
		ids = append(ids, c, c+"ab", "a"+c+"b", "ab"+c)
	}
	ids = append(ids, "vendor 42", "café", "a\u00a0", "\u200bx", "x\u0085", "42")
	accepted := 0
	for _, id := range ids {
		if !plainVendorID(id) {
			continue
		}
		accepted++
		if err := vendorIDCharacters(id); err != nil {
			t.Errorf("plainVendorID(%q) = true, but the full check says %v", id, err)
		}
	}
	// 93 printable bytes other than space and slash in four positions, space only inside, plus the
	// two plain ids above.
	if want := 93*4 + 1 + 2; accepted != want {
		t.Errorf("fast path accepted %d ids, want %d", accepted, want)
	}
	for _, tt := range []struct{ id, wantErr string }{
		{"a/b", "vendor_id: must not contain control, format or '/' characters"},
		{" a", "vendor_id: must not start or end with white space"},
		{"a\x7f", "vendor_id: must not contain control, format or '/' characters"},
		{"\xff", "vendor_id: must be valid UTF-8"},
		{"v-42", ""},
	} {
		err := ValidateVendorID(tt.id)
		if got := errString(err); got != tt.wantErr {
			t.Errorf("ValidateVendorID(%q) = %q, want %q", tt.id, got, tt.wantErr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

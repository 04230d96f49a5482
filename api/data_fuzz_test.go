package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzDataAPI drives the OPA Data API (POST /v1/data/{path}) with arbitrary paths and bodies
// through the fiber app: every answer is 200, 400 or 404 in OPA's shape, never a 5xx, never a
// panic.
func FuzzDataAPI(f *testing.F) {
	e := newEnv(f, nil)
	for _, s := range []struct{ path, body string }{
		{"tollgate/decision", `{"input":{"vendor_id":"1","action":"order.create"}}`},
		{"tollgate", `{"input":null}`},
		{"", `{}`},
		{"tollgate/../x", `{"input":1}`},
		{"tollgate%2f..", `{"input":[1,2,{"a":"b"}]}`},
		{"system/main", `{"input":{"x":1e400}}`},
		{"tollgate/allow", `{"input":` + `[[[[[[[[[[1]]]]]]]]]]` + `}`},
		{"a b/c", "{\"input\":\"\xff\"}"},
	} {
		f.Add(s.path, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		u := "/v1/data/" + url.PathEscape(path)
		if len(u) > 4000 {
			// Longer than the server's read buffer: over the wire it is a 431 / closed connection
			// (the hostile-input table covers that); app.Test reports it as an error instead.
			return
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.URL.Path, req.URL.RawPath = "", ""
		req.RequestURI = u
		if parsed, err := url.ParseRequestURI(u); err == nil {
			req.URL = parsed
		} else {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.srv.Decision.Test(req, 5000)
		if err != nil {
			t.Fatalf("%q %q: %v", path, body, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		switch resp.StatusCode {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("%q %q: %d %s", path, body, resp.StatusCode, out)
		}
		if !json.Valid(out) {
			t.Fatalf("%q %q: answer is not JSON: %q", path, body, out)
		}
	})
}

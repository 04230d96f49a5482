package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// readmeExample is a curl command of the README and the JSON answer printed under it.
type readmeExample struct {
	method, path, body string
	want               string
}

var curlPattern = regexp.MustCompile(`^curl -s localhost:8181(\S+)(?: -d '([^']*)')?$`)

// readmeExamples returns every "```sh curl ...``` followed by ```json ...```" pair.
func readmeExamples(t *testing.T) []readmeExample {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(sh|json)\n(.*?)```").FindAllStringSubmatch(string(raw), -1)
	var out []readmeExample
	for i := 0; i+1 < len(blocks); i++ {
		if blocks[i][1] != "sh" || blocks[i+1][1] != "json" {
			continue
		}
		m := curlPattern.FindStringSubmatch(strings.TrimSpace(blocks[i][2]))
		if m == nil {
			t.Fatalf("README example not understood: %s", blocks[i][2])
		}
		ex := readmeExample{method: http.MethodGet, path: m[1], body: m[2], want: blocks[i+1][2]}
		if ex.body != "" {
			ex.method = http.MethodPost
		}
		out = append(out, ex)
	}
	return out
}

// wildcard replaces every "…" in want with what got has at that place: the README elides
// values that change per run (decision ids).
func wildcard(want, got any) any {
	switch w := want.(type) {
	case string:
		if w == "…" {
			return got
		}
	case map[string]any:
		g, _ := got.(map[string]any)
		for k, v := range w {
			w[k] = wildcard(v, g[k])
		}
	case []any:
		g, _ := got.([]any)
		for i := range w {
			if i < len(g) {
				w[i] = wildcard(w[i], g[i])
			}
		}
	}
	return want
}

// TestReadmeExamplesAnswerAsShown runs the README's curl examples, in order, against
// `serve --demo` and compares each answer with the JSON the README prints.
func TestReadmeExamplesAnswerAsShown(t *testing.T) {
	examples := readmeExamples(t)
	if len(examples) < 5 {
		t.Fatalf("found only %d README examples", len(examples))
	}
	c := startServe(t, t.TempDir(), "--demo")
	for _, ex := range examples {
		req, err := http.NewRequest(ex.method, "http://"+c.api+ex.path, strings.NewReader(ex.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got, want any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", ex.method, ex.path, body)
		}
		if err := json.NewDecoder(bytes.NewReader([]byte(ex.want))).Decode(&want); err != nil {
			t.Fatalf("README JSON for %s does not parse: %v", ex.body, err)
		}
		want = wildcard(want, got)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s %s\n got: %s\nwant: %s", ex.method, ex.path, ex.body, body, ex.want)
		}
	}
}

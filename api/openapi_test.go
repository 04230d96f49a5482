package api_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"sigs.k8s.io/yaml"

	"github.com/tollgate-pdp/tollgate/api"
)

// fiberToOpenAPI turns fiber's "/v1/vendors/:id" and "/v1/data/*" into OpenAPI templates.
var paramRE = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

func routeSet(apps ...*fiber.App) map[string]bool {
	out := map[string]bool{}
	for _, app := range apps {
		for _, r := range app.GetRoutes(true) {
			if r.Method == fiber.MethodHead { // fiber adds HEAD beside every GET
				continue
			}
			p := paramRE.ReplaceAllString(r.Path, "{$1}")
			p = strings.Replace(p, "*", "{path}", 1)
			out[r.Method+" "+p] = true
		}
	}
	return out
}

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newEnv(t, nil)
	js, err := yaml.YAMLToJSON(api.OpenAPI())
	must(t, err)
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	must(t, json.Unmarshal(js, &doc))
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi = %q, want 3.0.x", doc.OpenAPI)
	}
	documented := map[string]bool{}
	methods := map[string]bool{"get": true, "put": true, "post": true, "patch": true, "delete": true, "head": true, "options": true}
	for path, ops := range doc.Paths {
		for m := range ops {
			if methods[m] {
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	served := routeSet(e.srv.Decision, e.srv.Webhook, e.srv.Ops)
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Fatalf("routes not in openapi.yaml: %v\nopenapi.yaml paths not served: %v", missing, extra)
	}

	// The document is served on the decision listener.
	r := e.do(http.MethodGet, e.decision+"/v1/openapi.yaml", nil)
	if r.Status != http.StatusOK || string(r.Body) != string(api.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.yaml = %d, %d bytes", r.Status, len(r.Body))
	}
}

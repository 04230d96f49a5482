package main

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-pdp/tollgate"
)

// loadCatalog reads the catalog YAML (or JSON) file; empty path means the built-in default.
// The YAML is converted to JSON and decoded strictly, so errors name the tier and field.
func loadCatalog(path string) (*tollgate.Catalog, error) {
	if path == "" {
		return tollgate.DefaultCatalog(), nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read catalog: %w", err)
	}
	c, err := parseCatalogYAML(raw)
	if err != nil {
		return nil, fmt.Errorf("catalog %s: %w", path, err)
	}
	return c, nil
}

func parseCatalogYAML(raw []byte) (*tollgate.Catalog, error) {
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, &tollgate.Error{Code: tollgate.EInvalid, Message: "not valid YAML: " + err.Error(), Err: err}
	}
	return tollgate.DecodeCatalog(bytes.NewReader(js))
}

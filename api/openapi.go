package api

import (
	"bytes"
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

//go:embed openapi.yaml
var openapiYAML []byte

// OpenAPI returns a copy of the OpenAPI 3.0 document describing all three listeners.
func OpenAPI() []byte { return bytes.Clone(openapiYAML) }

func (s *Server) handleOpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, "application/yaml")
	return c.Send(openapiYAML)
}

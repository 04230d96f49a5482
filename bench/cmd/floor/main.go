// Command floor is the benchmark's floor: a fiber server that answers every POST with a
// constant decision-sized JSON body, so the comparison shows what this machine allows for one
// loopback HTTP round trip through fiber with no work behind it.
package main

import (
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gofiber/fiber/v2"
)

var answer = []byte(`{"allow":true,"code":"ok","reason":"","limit":100,"used":12,"remaining":88,"tier":"essential","status":"active","upgrade_to":null,"decision_id":"000000000000-1","stale":false}`)

func main() {
	addr := flag.String("listen", "127.0.0.1:8199", "loopback address")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	app := fiber.New(fiber.Config{DisableStartupMessage: true, DisableDefaultDate: true})
	app.Post("/*", func(c *fiber.Ctx) error {
		c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
		return c.Send(answer)
	})
	app.Get("/health", func(c *fiber.Ctx) error { return c.SendString("ok") })
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		_ = app.Shutdown()
	}()
	log.Info("floor listening", "addr", *addr)
	if err := app.Listen(*addr); err != nil {
		log.Error("listen", "error", err.Error())
		os.Exit(1)
	}
}

// Command floor is the benchmark's floor: a fiber server that answers every POST with a
// constant decision-sized JSON body, so the comparison shows what this machine allows for one
// loopback HTTP round trip through fiber with no work behind it.
//
// With -work it first spends that much CPU per request in a loop that touches no memory: the
// comparison runs such floors to show what any server that spends that CPU per answer gets on
// the same machine, whatever the work is.
package main

import (
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
)

var answer = []byte(`{"allow":true,"code":"ok","reason":"","limit":100,"used":12,"remaining":88,"tier":"essential","status":"active","upgrade_to":null,"decision_id":"000000000000-1","stale":false}`)

func main() {
	addr := flag.String("listen", "127.0.0.1:8199", "loopback address")
	work := flag.Duration("work", 0, "CPU time to spend on every request before answering")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var iterations int
	if *work > 0 {
		iterations = calibrate(*work)
		log.Info("work per request", "work", work.String(), "iterations", iterations)
	}
	var sink atomic.Uint64 // the work's result, kept so the loop cannot be optimised away
	app := fiber.New(fiber.Config{DisableStartupMessage: true, DisableDefaultDate: true})
	app.Post("/*", func(c *fiber.Ctx) error {
		if iterations > 0 {
			sink.Store(spin(iterations))
		}
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

// spin is CPU work without memory traffic: n steps of a linear congruential generator.
func spin(n int) uint64 {
	x := uint64(n)
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x >> 33
}

// calibrate returns how many spin steps take d, timed at start-up (before any load, so the
// server has the CPU to itself): the best of several rounds of 200,000 steps each. The
// comparison's CPU table shows what a request then really costs.
func calibrate(d time.Duration) int {
	const steps = 200_000
	best := time.Duration(1<<63 - 1)
	for range 20 {
		t := time.Now()
		_ = spin(steps) // timed, not used
		best = min(best, time.Since(t))
	}
	return max(1, int(float64(steps)*float64(d)/float64(best)))
}

// Command app is the only file of the images the end-to-end tests build FROM scratch.
// It idles until stopped; APP_MODE switches on the misbehaviours later safety tests need.
package main

import (
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set per build with -ldflags "-X main.version=..." so builds differ.
var version = "dev"

func main() {
	fmt.Printf("app %s mode=%q\n", version, os.Getenv("APP_MODE"))
	switch os.Getenv("APP_MODE") {
	case "exit":
		os.Exit(1)
	case "ignore-term":
		// Only SIGKILL can end the process: it models a container that never stops gracefully.
		// (A bare select{} would be a deadlock the runtime kills at once.)
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
		for {
			time.Sleep(time.Hour)
		}
	case "serve":
		go serve()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	os.Exit(0)
}

// serve answers health checks so tests can verify that a new container really works.
func serve() {
	addr := os.Getenv("APP_ADDR")
	if addr == "" {
		addr = ":8080"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	})
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

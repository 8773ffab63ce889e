// Command app is the program inside the recreate fidelity image: it waits for its stop signal, and
// "app health" answers the image's HEALTHCHECK. It is built static so the image can be FROM scratch.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "health" {
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}

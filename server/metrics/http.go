package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Server serves one registry at /metrics over plain HTTP.
type Server struct {
	// Addr is the address it listens on, with the port chosen when the
	// configured one was 0.
	Addr string
	srv  *http.Server
	done chan struct{}
}

// Serve listens on addr ("ip:port"; port 0 picks a free one) and serves
// g's metrics at /metrics until Close. Scrape errors are logged to log.
func Serve(addr string, g prometheus.Gatherer, log logrus.FieldLogger) (*Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      errorLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	s := &Server{
		Addr: lis.Addr().String(),
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("metrics server stopped")
		}
	}()
	return s, nil
}

// Close stops the server, letting scrapes in progress finish for up to
// five seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

// errorLogger passes promhttp's scrape errors to logrus.
type errorLogger struct{ log logrus.FieldLogger }

func (l errorLogger) Println(v ...any) { l.log.Error(append([]any{"metrics scrape: "}, v...)...) }

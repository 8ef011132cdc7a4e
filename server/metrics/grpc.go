package metrics

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// UnaryInterceptor times each unary call and counts it by status code.
// Chain it outside server.Interceptor, which turns crib's errors into
// gRPC statuses, so the code counted is the one the client sees.
func (m *Metrics) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observeRPC(info.FullMethod, time.Since(start), err)
		return resp, err
	}
}

// StreamInterceptor times each server stream (GetContainerEvents and the
// list streams) from open to close and counts it by status code. Chain it
// outside server.StreamInterceptor, as UnaryInterceptor.
func (m *Metrics) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observeRPC(info.FullMethod, time.Since(start), err)
		return err
	}
}

func (m *Metrics) observeRPC(fullMethod string, took time.Duration, err error) {
	service, method := splitMethod(fullMethod)
	m.rpcSeconds.WithLabelValues(service, method).Observe(took.Seconds())
	m.rpcTotal.WithLabelValues(service, method, status.Code(err).String()).Inc()
}

// splitMethod splits "/runtime.v1.RuntimeService/Version" into
// "runtime.v1.RuntimeService" and "Version". A name not of that form is
// kept whole as the method, with an empty service.
func splitMethod(fullMethod string) (service, method string) {
	name := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndex(name, "/"); i > 0 && i < len(name)-1 {
		return name[:i], name[i+1:]
	}
	return "", fullMethod
}

package overlay

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/watchlist"
)

// KubeconfigClient returns a KubeOptions.Connect that loads the kubeconfig
// at path at each call. Its user must list and watch Nodes and patch this
// Node's status (flannel's ClusterRole); kubelet's may not, as the node
// authorizer lets a node read only its own Node since Kubernetes 1.32.
//
// The client is a RESTClient for core/v1 with a scheme of its own holding
// only Node and NodeList, not client-go's clientset: that one and its
// scheme register every API group at package initialisation, which cribd
// would pay at every start and at each re-exec that unpacks a layer
// (docs/architecture.md, "Measurements behind the shim's design").
func KubeconfigClient(path string) func() (KubeClient, error) {
	return func() (KubeClient, error) {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return KubeClient{}, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		scheme := runtime.NewScheme()
		scheme.AddKnownTypes(corev1.SchemeGroupVersion, &corev1.Node{}, &corev1.NodeList{})
		metav1.AddToGroupVersion(scheme, corev1.SchemeGroupVersion)
		cfg.APIPath = "/api"
		cfg.GroupVersion = &corev1.SchemeGroupVersion
		cfg.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
		cfg.UserAgent = "crib-overlay"
		rc, err := rest.RESTClientFor(cfg)
		if err != nil {
			return KubeClient{}, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return KubeClient{
			Nodes: cache.NewListWatchFromClient(rc, "nodes", metav1.NamespaceAll, fields.Everything()),
			PatchStatus: func(ctx context.Context, name string, patch []byte) error {
				return rc.Patch(types.MergePatchType).Resource("nodes").Name(name).SubResource("status").
					Body(patch).Do(ctx).Error()
			},
		}, nil
	}
}

// healthLW passes List and Watch through, telling note how each went: the
// source's health before its first list.
type healthLW struct {
	lw   cache.ListerWatcher
	note func(error)
}

func (h *healthLW) List(opts metav1.ListOptions) (runtime.Object, error) {
	return h.ListWithContext(context.Background(), opts)
}

func (h *healthLW) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return h.WatchWithContext(context.Background(), opts)
}

func (h *healthLW) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	obj, err := cache.ToListerWithContext(h.lw).ListWithContext(ctx, opts)
	h.noteErr("list Nodes", err)
	return obj, err
}

func (h *healthLW) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	w, err := cache.ToWatcherWithContext(h.lw).WatchWithContext(ctx, opts)
	var status apierrors.APIStatus
	if err != nil && opts.SendInitialEvents != nil && *opts.SendInitialEvents && errors.As(err, &status) {
		// A streamed list the server refused: the reflector falls back to
		// a plain list, whose outcome counts. A server not reached at all
		// is an outage: the reflector retries the streamed list without
		// falling back, so nothing else would report it.
		return w, err
	}
	h.noteErr("watch Nodes", err)
	return w, err
}

// IsWatchListSemanticsUnSupported keeps the wrapped ListerWatcher's answer,
// so the reflector streams the initial list (WatchListClient) only where
// that one can.
func (h *healthLW) IsWatchListSemanticsUnSupported() bool {
	return watchlist.DoesClientNotSupportWatchListSemantics(h.lw)
}

func (h *healthLW) noteErr(what string, err error) {
	if errors.Is(err, context.Canceled) {
		return // Close, not the server
	}
	if err != nil {
		err = fmt.Errorf("kubernetes API: %s: %w", what, err)
	}
	h.note(err)
}

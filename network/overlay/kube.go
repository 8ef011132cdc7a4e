package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"
)

// flannel's annotations on a Node (pkg/subnet/kube/annotations.go with the
// default prefix): crib writes and reads the same, so crib nodes and
// flanneld nodes find each other in one cluster.
const (
	annSubnetManager     = "flannel.alpha.coreos.com/kube-subnet-manager"
	annBackendType       = "flannel.alpha.coreos.com/backend-type"
	annBackendData       = "flannel.alpha.coreos.com/backend-data"
	annPublicIP          = "flannel.alpha.coreos.com/public-ip"
	annPublicIPOverwrite = "flannel.alpha.coreos.com/public-ip-overwrite"
)

// backendData is the vxlan backend-data annotation, as flannel marshals
// it: {"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}.
type backendData struct {
	VNI     int    `json:"VNI"`
	VtepMAC string `json:"VtepMAC"`
}

// KubeClient is what KubeSource needs of the API server.
type KubeClient struct {
	// Nodes lists and watches every Node.
	Nodes cache.ListerWatcher
	// PatchStatus applies a JSON merge patch to nodes/<name>/status.
	PatchStatus func(ctx context.Context, name string, mergePatch []byte) error
}

// KubeOptions configure a KubeSource.
type KubeOptions struct {
	// NodeName is this node's Node.
	NodeName string
	// VNI is the overlay's; nodes announcing another are skipped.
	VNI int
	// Connect makes the client. While it fails (a kubeconfig not yet
	// written by kubelet's bootstrap, or one that does not parse) it is
	// retried every Retry, and the source reports the error as its health.
	Connect func() (KubeClient, error)
	// Retry is the period of Connect and of failed publications; 0 means
	// 10 s.
	Retry time.Duration
	Log   logrus.FieldLogger
}

// KubeSource is a PeerSource over the cluster's Node objects, as flannel's
// kube subnet manager: each node's subnet is its spec.podCIDR, its VTEP MAC
// and underlay address are in flannel's annotations, and this node
// publishes itself by patching those annotations on its own Node's status.
//
// Nodes come from an informer, whose cache keeps the last known peers while
// the API server is away; on its return the informer relists and the
// changes reach the Manager through Changes. Until the first list
// succeeds the source is unhealthy (HealthReporter) with the last error,
// so NetworkReady says why; after it, API errors are logged, not
// reported: the overlay keeps working on the peers it knows.
type KubeSource struct {
	opts    KubeOptions
	log     logrus.FieldLogger
	ctx     context.Context
	cancel  context.CancelFunc
	changes chan struct{}
	repub   chan struct{}
	done    sync.WaitGroup
	once    sync.Once
	pubMu   sync.Mutex // one publication at a time

	mu     sync.Mutex
	client *KubeClient      // nil until Connect succeeds; guarded by mu
	store  cache.Store      // guarded by mu
	synced func() bool      // guarded by mu
	apiErr error            // last Connect, List or Watch error; guarded by mu
	want   *Lease           // the lease last given to Publish; guarded by mu
	leases map[string]Lease // by node name, from the informer; guarded by mu
	// skipped holds why a node is left out, so that a reason is logged
	// once per change, not at every event; guarded by mu.
	skipped map[string]string
}

// NewKubeSource starts connecting and watching Nodes in the background; it
// fails only on bad options, never on the API server.
func NewKubeSource(opts KubeOptions) (*KubeSource, error) {
	if !isNodeName(opts.NodeName) || opts.Connect == nil || opts.VNI < 1 {
		return nil, errors.New("overlay: KubeSource needs a node name, a VNI and Connect")
	}
	if opts.Retry <= 0 {
		opts.Retry = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = logrus.StandardLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &KubeSource{
		opts: opts, log: opts.Log, ctx: ctx, cancel: cancel,
		changes: make(chan struct{}, 1), repub: make(chan struct{}, 1),
		leases: map[string]Lease{}, skipped: map[string]string{},
	}
	s.done.Add(2)
	go s.run()
	go s.publishLoop()
	return s, nil
}

// run connects, retrying, then runs the Node informer until Close.
func (s *KubeSource) run() {
	defer s.done.Done()
	var client KubeClient
	for {
		c, err := s.opts.Connect()
		if err == nil {
			client = c
			break
		}
		s.noteAPI(fmt.Errorf("kubernetes API: %w", err))
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(s.opts.Retry):
		}
	}
	store, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: &healthLW{lw: client.Nodes, note: s.noteAPI},
		ObjectType:    &corev1.Node{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { s.onNode(obj, false) },
			UpdateFunc: func(_, obj any) { s.onNode(obj, false) },
			DeleteFunc: func(obj any) { s.onNode(obj, true) },
		},
		// No resync: the Manager reconciles on its own timer, and an
		// unchanged Node is no news.
	})
	s.mu.Lock()
	s.client, s.store, s.synced = &client, store, ctrl.HasSynced
	s.mu.Unlock()
	ctrl.RunWithContext(s.ctx)
}

// noteAPI records the outcome of a call to the API server, logging a new
// error once and the recovery after one.
func (s *KubeSource) noteAPI(err error) {
	s.mu.Lock()
	prev := s.apiErr
	s.apiErr = err
	s.mu.Unlock()
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		s.log.WithError(err).Warn("overlay: Kubernetes API unavailable; the overlay keeps the peers it knows")
	case err == nil && prev != nil:
		s.log.Info("overlay: Kubernetes API reachable again")
	}
}

// Healthy is nil once Nodes have been listed; before, the last error or
// that the first list is awaited.
func (s *KubeSource) Healthy() error {
	s.mu.Lock()
	synced, apiErr := s.synced, s.apiErr
	s.mu.Unlock()
	// HasSynced takes the informer's queue lock, which the queue may hold
	// while it calls onNode, which takes mu: never call it under mu.
	if synced != nil && synced() {
		return nil
	}
	if apiErr != nil {
		return fmt.Errorf("waiting for Nodes from the Kubernetes API: %w", apiErr)
	}
	return errors.New("waiting for the first list of Nodes from the Kubernetes API")
}

// onNode keeps a Node's lease (or why it has none) and signals the Manager
// when that or this node's pod CIDR changed.
func (s *KubeSource) onNode(obj any, deleted bool) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		// The watch missed the deletion; the relist found the Node gone.
		obj, deleted = tomb.Obj, true
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		s.log.Warnf("overlay: ignoring an informer object of type %T", obj)
		return
	}
	own := n.Name == s.opts.NodeName
	var l Lease
	var why string
	var bad bool // why is a fault of the Node's, not its absence from the overlay
	if !deleted {
		var in bool
		var err error
		if l, in, err = nodeLease(n, s.opts.VNI); err != nil {
			why, bad = err.Error(), true
		} else if !in {
			why = "not in the overlay: no " + annSubnetManager + " annotation"
		}
	}
	s.mu.Lock()
	old, had := s.leases[n.Name]
	oldWhy := s.skipped[n.Name]
	delete(s.leases, n.Name)
	delete(s.skipped, n.Name)
	switch {
	case deleted:
	case why != "":
		s.skipped[n.Name] = why
	default:
		s.leases[n.Name] = l
	}
	s.mu.Unlock()
	changed := deleted && had || !deleted && (had != (why == "") || had && !old.Equal(l))
	if why != "" && why != oldWhy && !own {
		if bad {
			s.log.WithField("node", n.Name).Warnf("overlay: skipping node: %s", why)
		} else {
			// A joining node before its agent published, or a node of
			// another network: no fault of anyone's.
			s.log.WithField("node", n.Name).Infof("overlay: skipping node: %s", why)
		}
	}
	if deleted && had {
		s.log.WithField("node", n.Name).Info("overlay: node gone")
	}
	if own && !deleted {
		// This node's pod CIDR, or annotations an operator or another
		// agent changed (public-ip-overwrite): let the Manager and the
		// publication look again.
		changed = true
		s.kickPublish()
	}
	if changed {
		select {
		case s.changes <- struct{}{}:
		default: // a signal is pending already
		}
	}
}

// nodeLease reads a Node's lease. A Node without flannel's
// kube-subnet-manager annotation is not in the overlay (in = false, no
// error): its agent has not published yet. Anything else amiss is an error
// naming the field.
func nodeLease(n *corev1.Node, vni int) (l Lease, in bool, err error) {
	a := n.Annotations
	if a[annSubnetManager] != "true" {
		return Lease{}, false, nil
	}
	if t := a[annBackendType]; t != "vxlan" {
		return Lease{}, false, fmt.Errorf("annotation %s is %q, not vxlan", annBackendType, t)
	}
	var bd backendData
	if err := json.Unmarshal([]byte(a[annBackendData]), &bd); err != nil {
		return Lease{}, false, fmt.Errorf("annotation %s %q: %w", annBackendData, a[annBackendData], err)
	}
	if bd.VNI != vni {
		return Lease{}, false, fmt.Errorf("annotation %s: VNI %d, this overlay's is %d", annBackendData, bd.VNI, vni)
	}
	mac, err := net.ParseMAC(bd.VtepMAC)
	if err != nil || len(mac) != 6 {
		return Lease{}, false, fmt.Errorf("annotation %s: VtepMAC %q is not a MAC-48", annBackendData, bd.VtepMAC)
	}
	ip, err := nodePublicIP(a)
	if err != nil {
		return Lease{}, false, err
	}
	sn, err := nodePodCIDR(n)
	if err != nil {
		return Lease{}, false, err
	}
	l = Lease{Name: n.Name, PublicIP: ip, Subnet: sn, VtepMAC: mac}
	if err := l.Validate(); err != nil {
		return Lease{}, false, err
	}
	return l, true, nil
}

// nodePublicIP is where a node's VXLAN packets go: public-ip-overwrite when
// an operator set it (flannel's agent copies it into public-ip at its
// start; honouring it directly reaches a node whose agent has not
// restarted since), else public-ip.
func nodePublicIP(a map[string]string) (net.IP, error) {
	key := annPublicIP
	if a[annPublicIPOverwrite] != "" {
		key = annPublicIPOverwrite
	}
	ip := net.ParseIP(a[key]).To4()
	if ip == nil {
		return nil, fmt.Errorf("annotation %s %q is not an IPv4 address", key, a[key])
	}
	return ip, nil
}

// nodePodCIDR is the Node's IPv4 pod CIDR: the first IPv4 one of
// spec.podCIDRs, else spec.podCIDR.
func nodePodCIDR(n *corev1.Node) (*net.IPNet, error) {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	if len(cidrs) == 0 {
		return nil, errors.New("spec.podCIDR not assigned yet")
	}
	for _, c := range cidrs {
		_, sn, err := net.ParseCIDR(c)
		if err != nil {
			return nil, fmt.Errorf("spec.podCIDRs %q: %w", c, err)
		}
		if sn.IP.To4() != nil {
			sn.IP = sn.IP.To4()
			return sn, nil
		}
	}
	return nil, fmt.Errorf("spec.podCIDRs %v holds no IPv4 CIDR", cidrs)
}

// ownNode returns this node's Node from the informer's cache, nil if it
// is not there (yet).
func (s *KubeSource) ownNode() *corev1.Node {
	s.mu.Lock()
	store := s.store
	s.mu.Unlock()
	if store == nil {
		return nil
	}
	obj, ok, err := store.GetByKey(s.opts.NodeName)
	if err != nil || !ok {
		return nil
	}
	n, _ := obj.(*corev1.Node)
	return n
}

// NodeSubnet is this Node's spec.podCIDR (first IPv4 of podCIDRs).
func (s *KubeSource) NodeSubnet() (cidr, why string) {
	n := s.ownNode()
	if n == nil {
		return "", fmt.Sprintf("waiting for node %s in the Kubernetes API", s.opts.NodeName)
	}
	sn, err := nodePodCIDR(n)
	if err != nil {
		return "", fmt.Sprintf("waiting for node %s's spec.podCIDR (kube-controller-manager --allocate-node-cidrs assigns it): %v", s.opts.NodeName, err)
	}
	return sn.String(), ""
}

// Publish sets this node's annotations to own, patching the Node's status
// only where they differ. The lease is kept: when the Node changes later
// (an operator sets public-ip-overwrite, someone strips the annotations)
// the source publishes again by itself.
func (s *KubeSource) Publish(ctx context.Context, own Lease) error {
	if err := own.Validate(); err != nil {
		return err
	}
	if own.Name != s.opts.NodeName {
		return fmt.Errorf("publish: lease of node %q, this node is %q", own.Name, s.opts.NodeName)
	}
	s.mu.Lock()
	s.want = &own
	s.mu.Unlock()
	return s.publish(ctx)
}

// publish patches this Node's annotations toward the wanted lease.
func (s *KubeSource) publish(ctx context.Context) error {
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	s.mu.Lock()
	want, client := s.want, s.client
	s.mu.Unlock()
	if want == nil {
		return nil
	}
	if client == nil {
		return errors.New("publish: not connected to the Kubernetes API yet")
	}
	n := s.ownNode()
	if n == nil {
		return fmt.Errorf("publish: node %s not found in the Kubernetes API", s.opts.NodeName)
	}
	patch, ip, err := publishPatch(n.Annotations, *want, s.opts.VNI)
	if err != nil || patch == nil {
		return err
	}
	if err := client.PatchStatus(ctx, s.opts.NodeName, patch); err != nil {
		return fmt.Errorf("publish: patch node %s status: %w", s.opts.NodeName, err)
	}
	log := s.log.WithFields(logrus.Fields{"publicIP": ip, "vtepMAC": want.VtepMAC})
	if !ip.Equal(want.PublicIP) {
		log = log.WithField("underlayIP", want.PublicIP)
	}
	log.Info("overlay: node annotations published")
	return nil
}

// publishPatch is the merge patch of nodes/<name>/status that sets flannel's
// annotations for own, holding only the keys whose values differ from
// cur; nil when none do. The published public IP is public-ip-overwrite
// when set, as flannel publishes it; the VTEP keeps sending from the
// underlay address (flannel's does too: the overwrite is for addresses the
// node does not hold, a NAT's).
func publishPatch(cur map[string]string, own Lease, vni int) (patch []byte, publicIP net.IP, err error) {
	publicIP = own.PublicIP
	if cur[annPublicIPOverwrite] != "" {
		if publicIP, err = nodePublicIP(cur); err != nil {
			return nil, nil, fmt.Errorf("publish: %w", err)
		}
	}
	bd, err := json.Marshal(backendData{VNI: vni, VtepMAC: own.VtepMAC.String()})
	if err != nil {
		return nil, nil, err
	}
	want := map[string]string{
		annSubnetManager: "true",
		annBackendType:   "vxlan",
		annBackendData:   string(bd),
		annPublicIP:      publicIP.String(),
	}
	for k, v := range want {
		if cur[k] == v {
			delete(want, k)
		}
	}
	if len(want) == 0 {
		return nil, publicIP, nil
	}
	patch, err = json.Marshal(map[string]any{"metadata": map[string]any{"annotations": want}})
	return patch, publicIP, err
}

func (s *KubeSource) kickPublish() {
	select {
	case s.repub <- struct{}{}:
	default:
	}
}

// publishLoop publishes again when this Node changed, and retries a failed
// publication every Retry.
func (s *KubeSource) publishLoop() {
	defer s.done.Done()
	var retry <-chan time.Time
	var lastErr string
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.repub:
		case <-retry:
		}
		retry = nil
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.Retry)
		err := s.publish(ctx)
		cancel()
		if err != nil {
			if err.Error() != lastErr {
				s.log.WithError(err).Warn("overlay: publishing node annotations")
			}
			lastErr = err.Error()
			retry = time.After(s.opts.Retry)
		} else {
			lastErr = ""
		}
	}
}

// Leases returns the lease of every Node with valid annotations and an
// IPv4 pod CIDR, this node's included, sorted by name.
func (s *KubeSource) Leases(ctx context.Context) ([]Lease, error) {
	s.mu.Lock()
	out := make([]Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Changes signals after a Node's lease appeared, changed or went, or this
// Node changed.
func (s *KubeSource) Changes() <-chan struct{} { return s.changes }

// Close stops watching; Changes is closed. The annotations stay: peers
// keep reaching this node's pods while cribd restarts.
func (s *KubeSource) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.done.Wait()
		close(s.changes)
	})
	return nil
}

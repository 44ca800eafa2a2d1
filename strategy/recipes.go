package strategy

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kubectl releases a Kubernetes Deployment with kubectl, as a [Command]:
//
//	s, err := strategy.Kubectl{Deployment: "checkout", Container: "app",
//		Image: "registry.example.com/checkout", Namespace: "shop"}.Command()
//
// One step, "set-image", runs
//
//	kubectl set image deployment/checkout app=registry.example.com/checkout:<version> --namespace shop
//
// then "kubectl rollout status deployment/checkout --timeout 5m0s", which
// watches until the rollout is complete (the Deployment's own strategy
// replaces the pods; its maxSurge and maxUnavailable decide how) and fails
// when it is not within the timeout or exceeds the Deployment's
// progressDeadlineSeconds; a failure to reach the API server is retried. Rollback sets the image
// back to the release's PreviousVersion, which is then required, and waits
// for that rollout the same way. Unlike "kubectl rollout undo", which flips
// between the last two revisions, setting the image is idempotent, as the
// runner needs.
type Kubectl struct {
	// Kubectl is the program; empty means "kubectl" from PATH.
	Kubectl string
	// Deployment names the Deployment. Required.
	Deployment string
	// Container names the container whose image changes. Required.
	Container string
	// Image is the image repository; the tag is the release's version.
	// Required.
	Image string
	// Namespace, Context and Kubeconfig are passed as --namespace,
	// --context and --kubeconfig when set.
	Namespace  string
	Context    string
	Kubeconfig string
	// ReadyTimeout bounds the wait for the rollout; 0 means 5 minutes.
	ReadyTimeout time.Duration
	// Bake is how long monitors watch after the rollout.
	Bake time.Duration
	// Env adds "NAME=value" variables to every kubectl command.
	Env []string
}

// Command returns the strategy, or an error naming a missing or unsafe
// field (a name starting with "-" or holding spaces).
func (k Kubectl) Command() (*Command, error) {
	for _, f := range []struct{ name, v string }{{"Deployment", k.Deployment}, {"Container", k.Container}, {"Image", k.Image}} {
		if err := word("Kubectl."+f.name, f.v, true); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct{ name, v string }{{"Namespace", k.Namespace}, {"Context", k.Context}, {"Kubeconfig", k.Kubeconfig}} {
		if err := word("Kubectl."+f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	bin := k.Kubectl
	if bin == "" {
		bin = "kubectl"
	}
	var flags []string
	for _, f := range []struct{ flag, v string }{{"--namespace", k.Namespace}, {"--context", k.Context}, {"--kubeconfig", k.Kubeconfig}} {
		if f.v != "" {
			flags = append(flags, f.flag, f.v)
		}
	}
	ready := cmpOr(k.ReadyTimeout, 5*time.Minute)
	target := "deployment/" + k.Deployment
	setImage := func(tag string) Cmd {
		return Cmd{Args: append([]string{bin, "set", "image", target, k.Container + "=" + k.Image + ":" + tag}, flags...)}
	}
	status := &Cmd{Args: append([]string{bin, "rollout", "status", target, "--timeout", ready.String()}, flags...), Timeout: ready + 30*time.Second}
	return &Command{
		Label: "kubectl",
		Steps: []CommandStep{{Name: "set-image", Exposure: 1, Bake: k.Bake,
			Run: []Cmd{setImage("{{.Version}}")}, Ready: status, ReadyTimeout: ready + time.Minute}},
		Revert:       []Cmd{setImage(`{{required "PreviousVersion" .PreviousVersion}}`)},
		RevertReady:  status,
		ReadyTimeout: ready + time.Minute,
		Timeout:      2 * time.Minute,
		Env:          k.Env,
	}, nil
}

// Helm releases a Helm chart, as a [Command]:
//
//	s, err := strategy.Helm{Release: "checkout", Chart: "oci://registry.example.com/charts/checkout",
//		Namespace: "shop"}.Command()
//
// One step, "upgrade", runs
//
//	helm upgrade checkout <chart> --install --atomic --wait --timeout 5m0s --namespace shop --set-string image.tag=<version>
//
// which waits until the release's resources are ready and, with --atomic,
// undoes its own failed upgrade. Rollback runs the same upgrade with the
// release's PreviousVersion (then required) rather than "helm rollback",
// which flips between revisions and so is not idempotent.
type Helm struct {
	// Helm is the program; empty means "helm" from PATH.
	Helm string
	// Release names the Helm release. Required.
	Release string
	// Chart is the chart reference: a path, repo/name or an oci:// URL.
	// Required.
	Chart string
	// ChartVersion pins the chart's version (--version).
	ChartVersion string
	// Namespace and KubeContext are passed as --namespace and --kube-context.
	Namespace   string
	KubeContext string
	// Values are values files (--values), in order.
	Values []string
	// VersionKey is the value set to the release's version; empty means
	// "image.tag".
	VersionKey string
	// Set are more --set-string "key=value" pairs; values are templates
	// (see [Cmd]).
	Set []string
	// Timeout is helm's --timeout; 0 means 5 minutes. The command is given
	// a minute more.
	Timeout time.Duration
	// Bake is how long monitors watch after the upgrade.
	Bake time.Duration
	// Env adds "NAME=value" variables to every helm command.
	Env []string
}

// Command returns the strategy, or an error naming a missing or unsafe field.
func (h Helm) Command() (*Command, error) {
	if err := word("Helm.Release", h.Release, true); err != nil {
		return nil, err
	}
	if err := word("Helm.Chart", h.Chart, true); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{{"ChartVersion", h.ChartVersion}, {"Namespace", h.Namespace}, {"KubeContext", h.KubeContext}} {
		if err := word("Helm."+f.name, f.v, false); err != nil {
			return nil, err
		}
	}
	for i, s := range h.Set {
		if k, _, ok := strings.Cut(s, "="); !ok || k == "" {
			return nil, fmt.Errorf("strategy: Helm.Set[%d] %q is not key=value", i, s)
		}
	}
	bin := h.Helm
	if bin == "" {
		bin = "helm"
	}
	key := h.VersionKey
	if key == "" {
		key = "image.tag"
	}
	timeout := cmpOr(h.Timeout, 5*time.Minute)
	upgrade := func(version string) Cmd {
		args := []string{bin, "upgrade", h.Release, h.Chart, "--install", "--atomic", "--wait", "--timeout", timeout.String()}
		for _, f := range []struct{ flag, v string }{{"--version", h.ChartVersion}, {"--namespace", h.Namespace}, {"--kube-context", h.KubeContext}} {
			if f.v != "" {
				args = append(args, f.flag, f.v)
			}
		}
		for _, v := range h.Values {
			args = append(args, "--values", v)
		}
		for _, s := range h.Set {
			args = append(args, "--set-string", s)
		}
		args = append(args, "--set-string", key+"="+version)
		return Cmd{Args: args}
	}
	return &Command{
		Label:   "helm",
		Steps:   []CommandStep{{Name: "upgrade", Exposure: 1, Bake: h.Bake, Run: []Cmd{upgrade("{{.Version}}")}}},
		Revert:  []Cmd{upgrade(`{{required "PreviousVersion" .PreviousVersion}}`)},
		Timeout: timeout + time.Minute,
		Env:     h.Env,
	}, nil
}

// SSH releases to machines one at a time over ssh, as a [Command]: one step
// per host, named after it, at exposure i/n, each running Deploy on the
// host and polling Ready there until it succeeds. Rollback runs Revert on
// every host, in order.
//
//	s, err := strategy.SSH{Hosts: []string{"web-1", "web-2"}, User: "deploy",
//		Deploy: []string{"sudo", "systemctl", "restart", "checkout@{{.Version}}"},
//		Revert: []string{"sudo", "systemctl", "restart", "checkout@{{.PreviousVersion}}"},
//		Ready:  []string{"curl", "-fsS", "http://localhost:8080/healthz"},
//		Bake:   5 * time.Minute}.Command()
//
// ssh joins its arguments and the remote login shell splits them again; the
// remote arguments are therefore quoted for a POSIX shell one by one (see
// Cmd.Remote), so that each stays one argument on the host. ssh runs with
// BatchMode=yes: it fails rather than prompt for a password or a host key.
type SSH struct {
	// SSH is the program; empty means "ssh" from PATH.
	SSH string
	// Hosts are the machines, in order. Required.
	Hosts []string
	// User is the remote user (-l); empty means ssh's default.
	User string
	// Options are more ssh arguments before the host: "-i", key, "-p", "2222".
	Options []string
	// Deploy is the remote command that puts the new version in place.
	// Required; each element is a template (see [Cmd]).
	Deploy []string
	// Revert is the remote command that puts the previous version back.
	Revert []string
	// Ready is a remote command polled until it succeeds, for ReadyTimeout.
	Ready []string
	// ReadyTimeout bounds the polling on each host; 0 means 2 minutes.
	ReadyTimeout time.Duration
	// Bake is how long monitors watch after each host.
	Bake time.Duration
}

// Command returns the strategy, or an error naming a missing or unsafe field.
func (s SSH) Command() (*Command, error) {
	if len(s.Hosts) == 0 {
		return nil, errors.New("strategy: SSH.Hosts is empty")
	}
	if len(s.Deploy) == 0 {
		return nil, errors.New("strategy: SSH.Deploy is empty")
	}
	if err := word("SSH.User", s.User, false); err != nil {
		return nil, err
	}
	bin := s.SSH
	if bin == "" {
		bin = "ssh"
	}
	on := func(host string, remote []string) *Cmd {
		args := append([]string{bin, "-o", "BatchMode=yes"}, s.Options...)
		if s.User != "" {
			args = append(args, "-l", s.User)
		}
		return &Cmd{Args: append(args, "--", host), Remote: remote}
	}
	timeout := cmpOr(s.ReadyTimeout, 2*time.Minute)
	c := &Command{Label: "ssh", ReadyTimeout: timeout}
	for i, h := range s.Hosts {
		if err := word(fmt.Sprintf("SSH.Hosts[%d]", i), h, true); err != nil {
			return nil, err
		}
		st := CommandStep{Name: h, Exposure: float64(i+1) / float64(len(s.Hosts)), Bake: s.Bake,
			Run: []Cmd{*on(h, s.Deploy)}, ReadyTimeout: timeout}
		if len(s.Ready) > 0 {
			st.Ready = on(h, s.Ready)
		}
		c.Steps = append(c.Steps, st)
		if len(s.Revert) > 0 {
			c.Revert = append(c.Revert, *on(h, s.Revert))
		}
	}
	return c, nil
}

// word checks a value that becomes an argument on its own: set if required,
// and not something a program would take for an option or two arguments.
func word(field, v string, required bool) error {
	switch {
	case v == "" && required:
		return fmt.Errorf("strategy: %s is empty", field)
	case strings.HasPrefix(v, "-"):
		return fmt.Errorf("strategy: %s %q starts with \"-\"", field, v)
	case strings.ContainsAny(v, " \t\r\n"):
		return fmt.Errorf("strategy: %s %q holds white space", field, v)
	}
	return nil
}

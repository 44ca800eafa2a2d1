package hook

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
)

// Payload is the JSON body of every call, Flagger's CanaryWebhookPayload
// field for field (pkg/apis/flagger/v1beta1/canary.go):
//
//	{"name": "podinfo", "namespace": "test", "phase": "Progressing",
//	 "checksum": "85d557f47b", "metadata": {"test": "all"}}
//
// Flagger's payload has no "type" field: a receiver tells hooks apart by
// their URL or metadata, as it does with Flagger. Nothing else is sent, so a
// receiver written for Flagger (flagger-loadtester, an in-house gate) reads
// it unchanged.
type Payload struct {
	// Name is the canary's name: the release's service.
	Name string `json:"name"`
	// Namespace is the canary's namespace: the environment being deployed
	// (the stage's, else the release's).
	Namespace string `json:"namespace"`
	// Phase is the canary's phase, in Flagger's words (see Phase).
	Phase Phase `json:"phase"`
	// Checksum identifies the release (see Checksum), as Flagger's hash of
	// the canary's tracked configuration identifies its revision.
	Checksum string `json:"checksum"`
	// Metadata is the webhook's Metadata, passed through unchanged; for an
	// event, Flagger's eventMessage, eventType and timestamp too.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Phase is a canary phase of Flagger, as a webhook receiver sees it.
type Phase string

// Flagger's canary phases sent by this package.
const (
	PhaseInitialized      Phase = "Initialized"
	PhaseWaiting          Phase = "Waiting"
	PhaseProgressing      Phase = "Progressing"
	PhaseWaitingPromotion Phase = "WaitingPromotion"
	PhasePromoting        Phase = "Promoting"
	PhaseFinalising       Phase = "Finalising"
	PhaseSucceeded        Phase = "Succeeded"
	PhaseFailed           Phase = "Failed"
)

// Type is one of Flagger's webhook types (its HookType).
type Type string

// Flagger's webhook types.
const (
	TypeConfirmRollout         Type = "confirm-rollout"
	TypePreRollout             Type = "pre-rollout"
	TypeRollout                Type = "rollout"
	TypeConfirmTrafficIncrease Type = "confirm-traffic-increase"
	TypeConfirmPromotion       Type = "confirm-promotion"
	TypePostRollout            Type = "post-rollout"
	TypeRollback               Type = "rollback"
	TypeEvent                  Type = "event"
)

// Checksum returns the payload's checksum for a release: the first ten hex
// digits of the SHA-256 of its id, service, version and environment. It is
// the same on every call for one release and differs between releases, as
// Flagger's differs between revisions of a canary.
func Checksum(id, service, version, environment string) string {
	h := sha256.New()
	for _, s := range []string{id, service, version, environment} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:10]
}

// payload builds the payload of w for a release.
func (w *Webhook) payload(id, service, version, environment string, phase Phase) Payload {
	return Payload{Name: service, Namespace: environment, Phase: phase,
		Checksum: Checksum(id, service, version, environment), Metadata: maps.Clone(w.Metadata)}
}

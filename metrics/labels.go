package metrics

import "github.com/tollgate-pdp/tollgate"

// labelOther is the value every bounded label folds unknown input into. Label values come from
// requests and from Stripe; bounding them keeps the series count fixed whatever callers send.
const labelOther = "other"

// Reconcile kinds and results, as counted by tollgate_reconcile_runs_total.
const (
	KindReconcile = "reconcile"
	KindPoll      = "poll"
	KindBackfill  = "backfill"

	ResultOK    = "ok"
	ResultError = "error"
)

// The known label values are returned by functions rather than held in package variables so
// that no caller can change them: the package keeps no mutable state.

// knownActions lists the actions of the default policy, then "other"; the index of an action
// here is its slot in the pre-resolved decision children (actionIndex).
func knownActions() []string {
	a := tollgate.DefaultActions()
	return append(a[:], labelOther)
}

// actionIndex is a switch, not a map, because it runs on every decision: the compiler turns
// it into a few length and byte comparisons with no hashing.
func actionIndex(action string) int {
	switch action {
	case tollgate.ActionOrderCreate:
		return 0
	case tollgate.ActionProductAdd:
		return 1
	case tollgate.ActionTeamMemberAdd:
		return 2
	case tollgate.ActionFeatureUse:
		return 3
	case tollgate.ActionCMSPageCreate:
		return 4
	case tollgate.ActionOrderHistoryView:
		return 5
	}
	return numActions - 1
}

const numActions = 7 // six known actions and "other"

// knownCodes lists the decision codes; see knownActions.
func knownCodes() []string {
	return []string{
		tollgate.CodeOK,
		tollgate.CodeInactive,
		tollgate.CodeLimitReached,
		tollgate.CodeFeatureMissing,
		tollgate.CodeUnknownVendor,
		tollgate.CodeUnknownAction,
		tollgate.CodeStale,
		labelOther,
	}
}

func codeIndex(code string) int {
	switch code {
	case tollgate.CodeOK:
		return 0
	case tollgate.CodeInactive:
		return 1
	case tollgate.CodeLimitReached:
		return 2
	case tollgate.CodeFeatureMissing:
		return 3
	case tollgate.CodeUnknownVendor:
		return 4
	case tollgate.CodeUnknownAction:
		return 5
	case tollgate.CodeStale:
		return 6
	}
	return numCodes - 1
}

const numCodes = 8 // seven known codes and "other"

// knownWebhookTypes lists the Stripe event types tollgate handles (sync/README.md). Any other
// type is counted as "other": Stripe may add types at any time and the event type is chosen
// by whoever sends the request, signed or not.
func knownWebhookTypes() []string {
	return []string{
		"customer.subscription.created",
		"customer.subscription.updated",
		"customer.subscription.deleted",
		"customer.subscription.trial_will_end",
		"customer.subscription.paused",
		"customer.subscription.resumed",
		"invoice.paid",
		"invoice.payment_failed",
		"invoice.finalized",
		"checkout.session.completed",
		"customer.updated",
		"customer.deleted",
		"product.created",
		"product.updated",
		"product.deleted",
		"price.created",
		"price.updated",
		"price.deleted",
		labelOther,
	}
}

// knownOutcomes lists the webhook outcomes of webhook.go.
func knownOutcomes() []string {
	return []string{
		tollgate.OutcomeProcessed,
		tollgate.OutcomeDuplicate,
		tollgate.OutcomeIgnored,
		tollgate.OutcomeFailed,
		tollgate.OutcomeRejected,
		labelOther,
	}
}

func knownKinds() []string { return []string{KindReconcile, KindPoll, KindBackfill, labelOther} }

func knownResults() []string { return []string{ResultOK, ResultError} }

// knownStatuses lists the subscription statuses for tollgate_vendors.
func knownStatuses() []string {
	s := make([]string, 0, len(tollgate.Statuses)+1)
	for _, st := range tollgate.Statuses {
		s = append(s, string(st))
	}
	return append(s, labelOther)
}

// indexOf builds a lookup from value to position, for the label sets that are too long for a
// hand-written switch. Lookups with a string key do not allocate.
func indexOf(values []string) map[string]int {
	m := make(map[string]int, len(values))
	for i, v := range values {
		m[v] = i
	}
	return m
}

// bound returns v when it is in index, else "other".
func bound(index map[string]int, v string) string {
	if _, ok := index[v]; ok {
		return v
	}
	return labelOther
}

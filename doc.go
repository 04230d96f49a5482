// Package tollgate holds the domain of the tollgate entitlement sidecar: the tier catalog,
// vendor subscriptions, usage, check requests and decisions, and the interfaces that the
// outside-system packages (cache, policy, sync, metrics, api) implement. It imports only the
// standard library.
package tollgate

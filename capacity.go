package tollgate

import (
	"context"
	"time"
)

// TierStatus keys vendor counts by tier code and subscription status.
type TierStatus struct {
	Tier   string // catalog tier code
	Status Status
}

// LimitTotal sums one effective limit over the subscriptions that grant access. Unlimited
// subscriptions are counted, never added as a number.
type LimitTotal struct {
	Sum       int64 `json:"sum"`       // over the limited subscriptions
	Limited   int64 `json:"limited"`   // subscriptions with a limit
	Unlimited int64 `json:"unlimited"` // subscriptions without one
}

// NearLimit counts vendors at or above a share of their order limit.
type NearLimit struct {
	AtLeast80  int64 `json:"at_least_80_percent"`
	AtLeast100 int64 `json:"at_least_100_percent"`
}

// VendorAggregates is the vendor population, kept incrementally by the store as vendors
// change (never by walking them on read).
type VendorAggregates struct {
	// Vendors counts vendors by tier and status.
	Vendors map[TierStatus]int64
	// TotalVendors counts every vendor; ActiveVendors those with status active; TrialVendors
	// those with status trial.
	TotalVendors, ActiveVendors, TrialVendors int64
	// TotalSubscriptions counts subscriptions (one per vendor); ActiveSubscriptions those the
	// policy grants access (see the "access" rule), as of their last change.
	TotalSubscriptions, ActiveSubscriptions int64
	// OrdersUsed sums the orders counted in every vendor's current billing period.
	OrdersUsed int64
	// OrdersCapacity is Orders.Sum and UnlimitedOrders is Orders.Unlimited (kept for the
	// existing metrics).
	OrdersCapacity, UnlimitedOrders int64
	// Effective limits (custom override else tier's, computed by the policy) summed over the
	// subscriptions that grant access.
	Orders, Products, TeamMembers LimitTotal
	// Reported usage, summed over all vendors that reported it.
	ReportedProducts, ReportedTeamMembers, ReportedStorageBytes int64
	// NearOrderLimit counts, by tier, vendors with access whose orders this period reached 80%
	// and 100% of their order limit.
	NearOrderLimit map[string]NearLimit
}

// EffectiveLimits are one subscription's limits as the policy computes them (nil: unlimited)
// and whether the policy grants the subscription access at all.
type EffectiveLimits struct {
	Orders      *int64 `json:"orders"`
	Products    *int64 `json:"products"`
	TeamMembers *int64 `json:"team_members"`
	Access      bool   `json:"access"`
	// NearOrders are the order counts from which the vendor counts as near (NearLimit's
	// AtLeast80) and at (AtLeast100) its order limit: empty, or those two, ascending. The
	// thresholds are the policy's.
	NearOrders []int64 `json:"near_orders"`
}

// LimitsResolver computes effective limits with the policy. The store calls it when a vendor
// changes (off the decision path) and caches the answer while the facts it depends on hold.
type LimitsResolver interface {
	EffectiveLimits(ctx context.Context, v *VendorState, now time.Time) (EffectiveLimits, error)
	// Revision names the policy and catalog; limits of unchanged vendors may change only when
	// it does.
	Revision() string
}

// CapacitySnapshot is the capacity of the platform at one moment: what was sold (limits) and
// what is used. GET /v1/capacity computes it now; one a day is stored.
type CapacitySnapshot struct {
	Date    string    `json:"date,omitempty"` // YYYY-MM-DD (UTC) of a stored daily snapshot
	TakenAt time.Time `json:"taken_at"`

	Vendors       CapacityVendors       `json:"vendors"`
	Subscriptions CapacitySubscriptions `json:"subscriptions"`
	// Tiers: vendors by tier code, then by status.
	Tiers map[string]map[string]int64 `json:"tiers"`

	Usage  CapacityUsage  `json:"usage"`
	Limits CapacityLimits `json:"limits"`
	// NearOrderLimit: by tier, vendors at >= 80% and >= 100% of their order limit.
	NearOrderLimit map[string]NearLimit `json:"near_order_limit"`

	StoreSizeBytes int64           `json:"store_size_bytes"`
	Decisions      CapacityLatency `json:"decisions"`
	Process        CapacityProcess `json:"process"`

	PolicyRevision  string `json:"policy_revision,omitempty"`
	CatalogRevision string `json:"catalog_revision,omitempty"`
}

// CapacityVendors counts vendors.
type CapacityVendors struct {
	Total  int64 `json:"total"`
	Active int64 `json:"active"`
	Trial  int64 `json:"trial"`
}

// CapacitySubscriptions counts subscriptions; active = granted access by the policy.
type CapacitySubscriptions struct {
	Total  int64 `json:"total"`
	Active int64 `json:"active"`
}

// CapacityUsage sums what vendors use: orders counted by tollgate, the rest reported by the app.
type CapacityUsage struct {
	OrdersThisPeriod int64 `json:"orders_this_period"`
	Products         int64 `json:"products"`
	TeamMembers      int64 `json:"team_members"`
	StorageBytes     int64 `json:"storage_bytes"`
}

// CapacityLimits are the theoretical limits: effective limits summed over active subscriptions.
type CapacityLimits struct {
	Orders      LimitTotal `json:"orders"`
	Products    LimitTotal `json:"products"`
	TeamMembers LimitTotal `json:"team_members"`
}

// CapacityLatency is the decision latency since the process started.
type CapacityLatency struct {
	Count              int64   `json:"count"`
	AverageLatencySecs float64 `json:"average_latency_seconds"`
}

// CapacityProcess is the process's resource use since it started. Peak CPU is the highest
// utilisation (in cores) over the sampler's intervals; peak memory is the kernel's resident
// high-water mark.
type CapacityProcess struct {
	CPUSecondsTotal   float64 `json:"cpu_seconds_total"`
	PeakCPUCores      float64 `json:"peak_cpu_cores"`
	ResidentBytes     int64   `json:"resident_bytes"`
	PeakResidentBytes int64   `json:"peak_resident_bytes"`
	SampleInterval    string  `json:"sample_interval,omitempty"`
}

// DateLayout is the layout of snapshot dates.
const DateLayout = "2006-01-02"

// ParseDate reads a YYYY-MM-DD date; the error names the field.
func ParseDate(field, s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, FieldErrorf(field, "must be a date YYYY-MM-DD, got %q", truncate(s, 32))
	}
	return t, nil
}

// SnapshotStore keeps one capacity snapshot per day.
type SnapshotStore interface {
	// PutSnapshot stores s under s.Date unless that date already has one; it returns the
	// snapshot stored for the date and whether this call stored it.
	PutSnapshot(ctx context.Context, s *CapacitySnapshot) (*CapacitySnapshot, bool, error)
	// Snapshots lists stored snapshots with from <= date <= to (YYYY-MM-DD; empty: open), oldest first.
	Snapshots(ctx context.Context, from, to string) ([]CapacitySnapshot, error)
}

// TakeSnapshot stores snap as the snapshot of its day (UTC date of TakenAt) unless the day
// already has one; see SnapshotStore.PutSnapshot.
func TakeSnapshot(ctx context.Context, store SnapshotStore, snap CapacitySnapshot) (*CapacitySnapshot, bool, error) {
	snap.Date = snap.TakenAt.UTC().Format(DateLayout)
	return store.PutSnapshot(ctx, &snap)
}

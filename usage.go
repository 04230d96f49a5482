package tollgate

import "time"

// PeriodUsage is the order count of one billing period.
type PeriodUsage struct {
	Period         string     `json:"period"` // RFC 3339 start of the billing period (see PeriodKey)
	Orders         int64      `json:"orders"`
	LimitReachedAt *time.Time `json:"orders_limit_reached_at,omitempty"`
}

// Usage is what a vendor has used. Orders are counted by tollgate per billing period; the other
// counts are reported by the application (they are the app's facts, not tollgate's).
type Usage struct {
	Periods        []PeriodUsage `json:"periods"` // newest first; past periods stay readable
	Products       *int64        `json:"products,omitempty"`
	TeamMembers    *int64        `json:"team_members,omitempty"`
	CMSPages       *int64        `json:"cms_pages,omitempty"`
	CMSCustomPages *int64        `json:"cms_custom_pages,omitempty"`
	StorageBytes   *int64        `json:"storage_bytes,omitempty"`
	ReportedAt     *time.Time    `json:"reported_at,omitempty"`
	// FeaturesUsed lists, sorted, the features of allowed feature.use checks (recorded
	// asynchronously; the plan-change dry run asks who would lose one).
	FeaturesUsed []string `json:"features_used,omitempty"`
}

// OrdersIn returns the orders counted in the period (0 for a period never counted).
func (u *Usage) OrdersIn(period string) int64 {
	for i := range u.Periods {
		if u.Periods[i].Period == period {
			return u.Periods[i].Orders
		}
	}
	return 0
}

// PeriodUsageOf returns the usage of one period, if it was ever counted.
func (u *Usage) PeriodUsageOf(period string) (PeriodUsage, bool) {
	for _, p := range u.Periods {
		if p.Period == period {
			return p, true
		}
	}
	return PeriodUsage{}, false
}

// PeriodKey names the billing period that orders placed at now are counted in: the start of the
// subscription's billing period when it has one, else the UTC calendar month. Keying counters by
// the period's start means a new period starts at zero with no reset job.
func PeriodKey(s *Subscription, now time.Time) string {
	if s != nil && s.PeriodStart != nil {
		return s.PeriodStart.UTC().Format(time.RFC3339)
	}
	now = now.UTC()
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
}

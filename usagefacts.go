package tollgate

import (
	"context"
	"time"
)

// UsageReport is what the application reports about a vendor's usage of things it counts
// itself (PUT /v1/vendors/{id}/usage). Nil fields are left as they are.
type UsageReport struct {
	Products       *int64 `json:"products,omitempty"`
	TeamMembers    *int64 `json:"team_members,omitempty"`
	CMSPages       *int64 `json:"cms_pages,omitempty"`
	CMSCustomPages *int64 `json:"cms_custom_pages,omitempty"`
	StorageBytes   *int64 `json:"storage_bytes,omitempty"`
	// At is when the counts were taken; zero means now. Stored as Usage.ReportedAt.
	At time.Time `json:"-"`
}

// Validate refuses negative counts and an empty report; the error names the field.
func (r *UsageReport) Validate() error {
	fields := []struct {
		name string
		v    *int64
	}{{"products", r.Products}, {"team_members", r.TeamMembers}, {"cms_pages", r.CMSPages},
		{"cms_custom_pages", r.CMSCustomPages}, {"storage_bytes", r.StorageBytes}}
	set := false
	for _, f := range fields {
		if f.v == nil {
			continue
		}
		set = true
		if *f.v < 0 {
			return FieldErrorf(f.name, "must be >= 0, got %d", *f.v)
		}
	}
	if !set {
		return FieldErrorf("products", "at least one of products, team_members, cms_pages, cms_custom_pages, storage_bytes is required")
	}
	return nil
}

// UsageReporter records application-reported usage durably (before it returns).
type UsageReporter interface {
	ReportUsage(ctx context.Context, vendorID string, r UsageReport) (*VendorState, error)
}

// CheckNoter learns usage facts from answered checks: the `count` fields refresh the reported
// counts, and allowed feature.use checks record the features a vendor uses (the plan-change
// dry run asks who would lose one). It is called on the decision path, so it must not block
// and should cost nothing when the facts are already known; what it records is eventually
// durable (best effort), unlike ReportUsage.
type CheckNoter interface {
	NoteCheck(v *VendorState, req *CheckRequest, allowed bool)
}

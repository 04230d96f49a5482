package tollgate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// ImportRow is one row of the model's vendor_subscriptions table, with its column names, as
// exported to JSON lines for `tollgate import` or read from the database by `import
// --database-url`. Every column of the table is accepted.
type ImportRow struct {
	VendorID              VendorID `json:"vendor_id"`
	Platform              string   `json:"platform"`
	Tier                  string   `json:"tier"`
	Status                string   `json:"status"`
	PeriodStart           *string  `json:"period_start"`
	PeriodEnd             *string  `json:"period_end"`
	IsAnnual              DBBool   `json:"is_annual"`
	TrialEndsAt           *string  `json:"trial_ends_at"`
	CardCollectedAt       *string  `json:"card_collected_at"`
	OrdersThisPeriod      int64    `json:"orders_this_period"`
	OrdersLimitReachedAt  *string  `json:"orders_limit_reached_at"`
	CustomOrdersLimit     *int64   `json:"custom_orders_limit"`
	CustomProductsLimit   *int64   `json:"custom_products_limit"`
	CustomTeamLimit       *int64   `json:"custom_team_limit"`
	StripeCustomerID      *string  `json:"stripe_customer_id"`
	StripeSubscriptionID  *string  `json:"stripe_subscription_id"`
	StripePriceID         *string  `json:"stripe_price_id"`
	StripePaymentMethodID *string  `json:"stripe_payment_method_id"`
	ScheduledTierChange   *string  `json:"scheduled_tier_change"`
	ScheduledChangeAt     *string  `json:"scheduled_change_at"`
	PaymentRetryCount     int64    `json:"payment_retry_count"`
	LastPaymentError      *string  `json:"last_payment_error"`
	CancelledAt           *string  `json:"cancelled_at"`
	CancellationReason    *string  `json:"cancellation_reason"`
	CreatedAt             *string  `json:"created_at"`
	UpdatedAt             *string  `json:"updated_at"`
	// Columns the domain has no place for, accepted and dropped: the row id, the tier row id
	// (the database import resolves it into Tier and Platform before this row is built) and
	// Stripe's proration setting (tollgate does not change subscriptions in Stripe).
	ID                json.RawMessage `json:"id"`
	TierID            json.RawMessage `json:"tier_id"`
	ProrationBehavior *string         `json:"proration_behavior"`
}

// DBBool is a boolean as databases dump them: JSON true/false, or SQLite's 0/1.
type DBBool bool

// UnmarshalJSON accepts true, false, 0 and 1.
func (b *DBBool) UnmarshalJSON(data []byte) error {
	switch string(data) {
	case "true", "1":
		*b = true
	case "false", "0":
		*b = false
	case "null":
	default:
		return &json.UnmarshalTypeError{Value: truncate(string(data), 16), Type: reflect.TypeFor[DBBool]()}
	}
	return nil
}

// importLayouts are the timestamp forms found in database exports, tried in order: RFC 3339,
// and SQLite's and PostgreSQL's text forms (YYYY-MM-DD HH:MM:SS[.ffffff][+HH[:MM]]). Values
// without a zone are taken as UTC.
var importLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07", "2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999", "2006-01-02"}

// ParseDBTime reads a timestamp in one of the forms databases dump (see importLayouts), in UTC;
// the error names the field.
func ParseDBTime(field, v string) (time.Time, error) {
	for _, layout := range importLayouts {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, FieldErrorf(field, "not a timestamp: %q (want RFC 3339 or YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM])", truncate(v, 40))
}

func parseImportTime(field string, v *string) (*time.Time, error) {
	if v == nil || *v == "" {
		return nil, nil
	}
	t, err := ParseDBTime(field, *v)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// DecodeImportRow parses one JSON line into an import record validated against the catalog.
// Unknown columns are refused by name, so a mistyped export does not import silently wrong.
func DecodeImportRow(line []byte, c *Catalog) (ImportRecord, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var row ImportRow
	if err := dec.Decode(&row); err != nil {
		return ImportRecord{}, decodeError(err)
	}
	if dec.More() {
		return ImportRecord{}, FieldErrorf("line", "has data after the JSON object")
	}
	return row.Record(c)
}

// Record turns the row into an import record validated against the catalog: an unknown tier,
// a bad status or a negative count is refused, naming the column.
func (row *ImportRow) Record(c *Catalog) (ImportRecord, error) {
	sub := Subscription{
		VendorID: string(row.VendorID), Platform: row.Platform, Tier: row.Tier,
		Status: Status(row.Status), IsAnnual: bool(row.IsAnnual),
		Overrides: Overrides{CustomOrdersLimit: row.CustomOrdersLimit,
			CustomProductsLimit: row.CustomProductsLimit, CustomTeamLimit: row.CustomTeamLimit},
		StripeCustomerID: deref(row.StripeCustomerID), StripeSubscriptionID: deref(row.StripeSubscriptionID),
		StripePriceID: deref(row.StripePriceID), StripePaymentMethodID: deref(row.StripePaymentMethodID),
		ScheduledTierChange: deref(row.ScheduledTierChange), PaymentRetryCount: row.PaymentRetryCount,
		LastPaymentError: deref(row.LastPaymentError), CancellationReason: deref(row.CancellationReason),
		AddOns: []SubscriptionAddOn{},
	}
	times := []struct {
		field string
		src   *string
		dst   **time.Time
	}{
		{"period_start", row.PeriodStart, &sub.PeriodStart},
		{"period_end", row.PeriodEnd, &sub.PeriodEnd},
		{"trial_ends_at", row.TrialEndsAt, &sub.TrialEndsAt},
		{"card_collected_at", row.CardCollectedAt, &sub.CardCollectedAt},
		{"scheduled_change_at", row.ScheduledChangeAt, &sub.ScheduledChangeAt},
		{"cancelled_at", row.CancelledAt, &sub.CancelledAt},
		{"created_at", row.CreatedAt, &sub.CreatedAt},
		{"updated_at", row.UpdatedAt, &sub.UpdatedAt},
	}
	for _, f := range times {
		t, err := parseImportTime(f.field, f.src)
		if err != nil {
			return ImportRecord{}, err
		}
		*f.dst = t
	}
	reached, err := parseImportTime("orders_limit_reached_at", row.OrdersLimitReachedAt)
	if err != nil {
		return ImportRecord{}, err
	}
	if row.OrdersThisPeriod < 0 {
		return ImportRecord{}, FieldErrorf("orders_this_period", "must be >= 0, got %d", row.OrdersThisPeriod)
	}
	if err := sub.Validate(c); err != nil {
		return ImportRecord{}, err
	}
	return ImportRecord{Subscription: sub, OrdersThisPeriod: row.OrdersThisPeriod, OrdersLimitReachedAt: reached}, nil
}

// decodeError turns an encoding/json error into an *Error naming the field at fault.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	var appErr *Error
	switch {
	case asErr(err, &appErr):
		return appErr
	case asErr(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return &Error{Code: EInvalid, Field: field, Message: fmt.Sprintf("%s: must be %s, got %s", field, jsonTypeName(typeErr.Type.String()), typeErr.Value), Err: err}
	case asErr(err, &syntaxErr):
		return &Error{Code: EInvalid, Field: "body", Message: "body: invalid JSON at offset " + strconv.FormatInt(syntaxErr.Offset, 10) + ": " + syntaxErr.Error(), Err: err}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Code: EInvalid, Field: name, Message: name + ": unknown field", Err: err}
	default:
		return &Error{Code: EInvalid, Field: "body", Message: "body: " + err.Error(), Err: err}
	}
}

// DecodeError is decodeError for other packages decoding request bodies.
func DecodeError(err error) error { return decodeError(err) }

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case goType == "string" || goType == "tollgate.VendorID" || goType == "tollgate.Status":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case goType == "tollgate.DBBool":
		return "a boolean (true, false, 0 or 1)"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	default:
		return "an object"
	}
}

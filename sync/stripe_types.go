package sync

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// These types decode the raw data.object of Stripe events (and API list pages) with
// encoding/json. They read both payload eras tollgate meets:
//
//   - API 2023-10-16 (what stripe-go v76 decodes): the billing period is on the subscription
//     (current_period_start/end) and an invoice names its subscription at "subscription";
//   - 2025-03-31.basil and later: the period is on each items.data[] entry, and an invoice's
//     subscription is at parent.subscription_details.subscription.
//
// Only the fields tollgate uses are declared; unknown fields are ignored so new Stripe fields
// never break decoding.

// Event is the envelope of a Stripe event.
type Event struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes,omitempty"`
	} `json:"data"`
}

// DecodeEvent decodes and checks an event envelope: it must have an id, a type, a created time
// and a data.object that is a JSON object.
func DecodeEvent(payload []byte) (*Event, error) {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return nil, fmt.Errorf("decode event: %w", err)
	}
	switch {
	case e.ID == "":
		return nil, fmt.Errorf("decode event: no id")
	case len(e.ID) > 255:
		return nil, fmt.Errorf("decode event: id longer than 255 bytes")
	case e.Type == "":
		return nil, fmt.Errorf("decode event %s: no type", e.ID)
	case e.Created <= 0:
		return nil, fmt.Errorf("decode event %s: no created time", e.ID)
	case len(bytes.TrimSpace(e.Data.Object)) == 0 || bytes.TrimSpace(e.Data.Object)[0] != '{':
		return nil, fmt.Errorf("decode event %s: data.object is not an object", e.ID)
	}
	return &e, nil
}

// Ref is a reference to another Stripe object: either its id as a string, or the expanded object
// (of which the id is kept, and the raw JSON for callers that decode it further).
type Ref struct {
	ID  string
	Raw json.RawMessage // the expanded object, nil when the reference was a plain id
}

// UnmarshalJSON accepts null, "id" or {"id": ...}.
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	*r = Ref{}
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		return nil
	case b[0] == '"':
		return json.Unmarshal(b, &r.ID)
	case b[0] == '{':
		var o struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		r.ID = o.ID
		r.Raw = append(json.RawMessage(nil), b...)
		return nil
	}
	return fmt.Errorf("stripe reference: want a string or an object, got %.20s", b)
}

// MarshalJSON writes the id, or the expanded object.
func (r Ref) MarshalJSON() ([]byte, error) {
	if r.Raw != nil {
		return r.Raw, nil
	}
	if r.ID == "" {
		return []byte("null"), nil
	}
	return json.Marshal(r.ID)
}

// Metadata is Stripe's string map; values that are not strings (never sent by Stripe, but
// possible in hand-written files) are kept in their JSON text.
type Metadata map[string]string

// UnmarshalJSON accepts null and values of any JSON type.
func (m *Metadata) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*m = nil
		return nil
	}
	out := make(Metadata, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			out[k] = s
			continue
		}
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		out[k] = string(v)
	}
	*m = out
	return nil
}

// Recurring is a price's billing interval.
type Recurring struct {
	Interval      string `json:"interval"` // day, week, month, year
	IntervalCount int64  `json:"interval_count"`
}

// Price is a Stripe price. In places where Stripe sends only the id (schedule phases,
// basil invoice lines) it decodes from a string into a Price with only ID set.
type Price struct {
	ID         string     `json:"id"`
	Object     string     `json:"object"`
	Active     bool       `json:"active"`
	Deleted    bool       `json:"deleted"`
	Currency   string     `json:"currency"`
	LookupKey  string     `json:"lookup_key"`
	Nickname   string     `json:"nickname"`
	Metadata   Metadata   `json:"metadata"`
	Product    Ref        `json:"product"`
	Recurring  *Recurring `json:"recurring"`
	Type       string     `json:"type"`
	UnitAmount *int64     `json:"unit_amount"`
}

// UnmarshalJSON accepts a price object or a price id.
func (p *Price) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*p = Price{}
		return json.Unmarshal(b, &p.ID)
	}
	type plain Price
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*p = Price(v)
	return nil
}

// Annual reports whether the price bills yearly.
func (p *Price) Annual() bool {
	return p != nil && p.Recurring != nil && p.Recurring.Interval == "year"
}

// Product is a Stripe product.
type Product struct {
	ID           string   `json:"id"`
	Object       string   `json:"object"`
	Name         string   `json:"name"`
	Active       bool     `json:"active"`
	Deleted      bool     `json:"deleted"`
	Metadata     Metadata `json:"metadata"`
	DefaultPrice Ref      `json:"default_price"`
}

// SubscriptionItem is one line of a subscription. Since 2025-03-31 it carries the billing period.
type SubscriptionItem struct {
	ID                 string   `json:"id"`
	Price              Price    `json:"price"`
	Plan               *Price   `json:"plan"` // legacy plan object; used when price is missing
	Quantity           *int64   `json:"quantity"`
	Metadata           Metadata `json:"metadata"`
	CurrentPeriodStart *int64   `json:"current_period_start"`
	CurrentPeriodEnd   *int64   `json:"current_period_end"`
}

// EffectivePrice is the item's price, falling back to the legacy plan id.
func (it *SubscriptionItem) EffectivePrice() Price {
	if it.Price.ID == "" && it.Plan != nil {
		return *it.Plan
	}
	return it.Price
}

// Qty is the item's quantity (1 when absent, as Stripe defaults it).
func (it *SubscriptionItem) Qty() int64 {
	if it.Quantity == nil {
		return 1
	}
	return *it.Quantity
}

// CancellationDetails says why a subscription was cancelled.
type CancellationDetails struct {
	Reason   string `json:"reason"`   // cancellation_requested, payment_disputed, payment_failed
	Feedback string `json:"feedback"` // customer feedback code
	Comment  string `json:"comment"`
}

// PendingUpdate is a change that applies when its invoice is paid.
type PendingUpdate struct {
	ExpiresAt         *int64             `json:"expires_at"`
	SubscriptionItems []SubscriptionItem `json:"subscription_items"`
	TrialEnd          *int64             `json:"trial_end"`
}

// ScheduleItem is an item of a subscription schedule phase; price is an id or an object.
type ScheduleItem struct {
	Price    Price  `json:"price"`
	Quantity *int64 `json:"quantity"`
}

// SchedulePhase is one phase of a subscription schedule.
type SchedulePhase struct {
	StartDate int64          `json:"start_date"`
	EndDate   int64          `json:"end_date"`
	Items     []ScheduleItem `json:"items"`
}

// SubscriptionSchedule is a subscription schedule (expanded on the subscription, or the object
// of subscription_schedule.* events).
type SubscriptionSchedule struct {
	ID           string          `json:"id"`
	Status       string          `json:"status"`
	Subscription Ref             `json:"subscription"`
	Customer     Ref             `json:"customer"`
	Phases       []SchedulePhase `json:"phases"`
	CurrentPhase *struct {
		StartDate int64 `json:"start_date"`
		EndDate   int64 `json:"end_date"`
	} `json:"current_phase"`
	Metadata Metadata `json:"metadata"`
}

// Subscription is a Stripe subscription in either era.
type Subscription struct {
	ID                   string               `json:"id"`
	Object               string               `json:"object"`
	Status               string               `json:"status"`
	Customer             Ref                  `json:"customer"`
	Created              int64                `json:"created"`
	CancelAtPeriodEnd    bool                 `json:"cancel_at_period_end"`
	CancelAt             *int64               `json:"cancel_at"`
	CanceledAt           *int64               `json:"canceled_at"`
	EndedAt              *int64               `json:"ended_at"`
	TrialStart           *int64               `json:"trial_start"`
	TrialEnd             *int64               `json:"trial_end"`
	CurrentPeriodStart   *int64               `json:"current_period_start"` // 2023-10-16
	CurrentPeriodEnd     *int64               `json:"current_period_end"`   // 2023-10-16
	DefaultPaymentMethod Ref                  `json:"default_payment_method"`
	DefaultSource        Ref                  `json:"default_source"`
	PendingUpdate        *PendingUpdate       `json:"pending_update"`
	Schedule             Ref                  `json:"schedule"`
	CancellationDetails  *CancellationDetails `json:"cancellation_details"`
	Metadata             Metadata             `json:"metadata"`
	Items                struct {
		Data []SubscriptionItem `json:"data"`
	} `json:"items"`
}

// Period returns the current billing period: the subscription's own fields (2023-10-16), else
// the items' (basil: the earliest start and latest end over the items). ok is false when
// neither is present.
func (s *Subscription) Period() (start, end int64, ok bool) {
	if s.CurrentPeriodStart != nil && s.CurrentPeriodEnd != nil {
		return *s.CurrentPeriodStart, *s.CurrentPeriodEnd, true
	}
	for _, it := range s.Items.Data {
		if it.CurrentPeriodStart == nil || it.CurrentPeriodEnd == nil {
			continue
		}
		if !ok || *it.CurrentPeriodStart < start {
			start = *it.CurrentPeriodStart
		}
		if !ok || *it.CurrentPeriodEnd > end {
			end = *it.CurrentPeriodEnd
		}
		ok = true
	}
	return start, end, ok
}

// ExpandedSchedule decodes the subscription's schedule when it was expanded.
func (s *Subscription) ExpandedSchedule() (*SubscriptionSchedule, bool) {
	if s.Schedule.Raw == nil {
		return nil, false
	}
	var sch SubscriptionSchedule
	if err := json.Unmarshal(s.Schedule.Raw, &sch); err != nil {
		return nil, false
	}
	return &sch, true
}

// PaymentMethodCreated is the creation time of an expanded default payment method (0 if unknown).
func (s *Subscription) PaymentMethodCreated() int64 {
	if s.DefaultPaymentMethod.Raw == nil {
		return 0
	}
	var pm struct {
		Created int64 `json:"created"`
	}
	_ = json.Unmarshal(s.DefaultPaymentMethod.Raw, &pm)
	return pm.Created
}

// Customer is a Stripe customer (or a deleted customer: {"id", "object", "deleted": true}).
type Customer struct {
	ID              string   `json:"id"`
	Object          string   `json:"object"`
	Deleted         bool     `json:"deleted"`
	Email           string   `json:"email"`
	Name            string   `json:"name"`
	Metadata        Metadata `json:"metadata"`
	InvoiceSettings struct {
		DefaultPaymentMethod Ref `json:"default_payment_method"`
	} `json:"invoice_settings"`
}

// CheckoutSession is a Stripe Checkout session.
type CheckoutSession struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	ClientReferenceID string   `json:"client_reference_id"`
	Customer          Ref      `json:"customer"`
	Subscription      Ref      `json:"subscription"`
	Mode              string   `json:"mode"`
	Status            string   `json:"status"`
	PaymentStatus     string   `json:"payment_status"`
	Metadata          Metadata `json:"metadata"`
}

// StripeError is the error object Stripe attaches to failed finalizations and payments.
type StripeError struct {
	Code        string `json:"code"`
	DeclineCode string `json:"decline_code"`
	Message     string `json:"message"`
	Type        string `json:"type"`
}

// String is a short human description of the error.
func (e *StripeError) String() string {
	if e == nil {
		return ""
	}
	switch {
	case e.Message != "":
		return e.Message
	case e.DeclineCode != "":
		return e.DeclineCode
	case e.Code != "":
		return e.Code
	}
	return e.Type
}

// InvoiceLine is one line of an invoice.
type InvoiceLine struct {
	ID          string   `json:"id"`
	Amount      int64    `json:"amount"`
	Currency    string   `json:"currency"`
	Description string   `json:"description"`
	Quantity    *int64   `json:"quantity"`
	Price       *Price   `json:"price"` // 2023-10-16
	Metadata    Metadata `json:"metadata"`
	Period      struct {
		Start int64 `json:"start"`
		End   int64 `json:"end"`
	} `json:"period"`
	Pricing *struct { // basil
		PriceDetails *struct {
			Price   Ref    `json:"price"`
			Product string `json:"product"`
		} `json:"price_details"`
	} `json:"pricing"`
}

// PriceID is the line's price id in either era.
func (l *InvoiceLine) PriceID() string {
	if l.Price != nil && l.Price.ID != "" {
		return l.Price.ID
	}
	if l.Pricing != nil && l.Pricing.PriceDetails != nil {
		return l.Pricing.PriceDetails.Price.ID
	}
	return ""
}

// Invoice is a Stripe invoice in either era.
type Invoice struct {
	ID                    string       `json:"id"`
	Object                string       `json:"object"`
	Number                string       `json:"number"`
	Customer              Ref          `json:"customer"`
	Subscription          Ref          `json:"subscription"` // 2023-10-16
	Status                string       `json:"status"`
	Currency              string       `json:"currency"`
	AmountDue             int64        `json:"amount_due"`
	AmountPaid            int64        `json:"amount_paid"`
	AmountRemaining       int64        `json:"amount_remaining"`
	Subtotal              int64        `json:"subtotal"`
	Total                 int64        `json:"total"`
	AttemptCount          int64        `json:"attempt_count"`
	Attempted             bool         `json:"attempted"`
	BillingReason         string       `json:"billing_reason"`
	Created               int64        `json:"created"`
	PeriodStart           int64        `json:"period_start"`
	PeriodEnd             int64        `json:"period_end"`
	DueDate               *int64       `json:"due_date"`
	NextPaymentAttempt    *int64       `json:"next_payment_attempt"`
	HostedInvoiceURL      string       `json:"hosted_invoice_url"`
	InvoicePDF            string       `json:"invoice_pdf"`
	LastFinalizationError *StripeError `json:"last_finalization_error"`
	PaymentIntent         Ref          `json:"payment_intent"` // 2023-10-16; expanded: last_payment_error
	Charge                Ref          `json:"charge"`         // 2023-10-16; expanded: failure_message
	Metadata              Metadata     `json:"metadata"`
	StatusTransitions     struct {
		FinalizedAt *int64 `json:"finalized_at"`
		PaidAt      *int64 `json:"paid_at"`
		VoidedAt    *int64 `json:"voided_at"`
	} `json:"status_transitions"`
	SubscriptionDetails *struct { // 2023-10-16
		Metadata Metadata `json:"metadata"`
	} `json:"subscription_details"`
	Parent *struct { // basil
		Type                string `json:"type"`
		SubscriptionDetails *struct {
			Subscription Ref      `json:"subscription"`
			Metadata     Metadata `json:"metadata"`
		} `json:"subscription_details"`
	} `json:"parent"`
	Lines struct {
		Data []InvoiceLine `json:"data"`
	} `json:"lines"`
}

// SubscriptionID is the invoice's subscription in either era ("" for one-off invoices).
func (in *Invoice) SubscriptionID() string {
	if in.Subscription.ID != "" {
		return in.Subscription.ID
	}
	if in.Parent != nil && in.Parent.SubscriptionDetails != nil {
		return in.Parent.SubscriptionDetails.Subscription.ID
	}
	return ""
}

// SubscriptionMetadata is the subscription's metadata as copied onto the invoice, either era.
func (in *Invoice) SubscriptionMetadata() Metadata {
	if in.Parent != nil && in.Parent.SubscriptionDetails != nil && in.Parent.SubscriptionDetails.Metadata != nil {
		return in.Parent.SubscriptionDetails.Metadata
	}
	if in.SubscriptionDetails != nil {
		return in.SubscriptionDetails.Metadata
	}
	return nil
}

// PaymentError describes why the invoice's payment failed, from whatever the payload carries:
// an expanded payment intent's last_payment_error, an expanded charge's failure message, or the
// last finalization error. Empty when nothing says.
func (in *Invoice) PaymentError() string {
	if in.PaymentIntent.Raw != nil {
		var pi struct {
			LastPaymentError *StripeError `json:"last_payment_error"`
		}
		if json.Unmarshal(in.PaymentIntent.Raw, &pi) == nil && pi.LastPaymentError.String() != "" {
			return pi.LastPaymentError.String()
		}
	}
	if in.Charge.Raw != nil {
		var ch struct {
			FailureMessage string `json:"failure_message"`
			FailureCode    string `json:"failure_code"`
		}
		if json.Unmarshal(in.Charge.Raw, &ch) == nil {
			if ch.FailureMessage != "" {
				return ch.FailureMessage
			}
			if ch.FailureCode != "" {
				return ch.FailureCode
			}
		}
	}
	if s := in.LastFinalizationError.String(); s != "" {
		return s
	}
	return ""
}

// itoa formats an int64.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }

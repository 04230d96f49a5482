package tollgate

import "time"

// Invoice is one entry of a vendor's billing history, from Stripe. Money is integer cents of
// Currency.
type Invoice struct {
	ID               string        `json:"id"`
	Number           string        `json:"number,omitempty"`
	VendorID         string        `json:"vendor_id"`
	CustomerID       string        `json:"stripe_customer_id,omitempty"`
	SubscriptionID   string        `json:"stripe_subscription_id,omitempty"`
	Status           string        `json:"status"` // draft, open, paid, uncollectible, void
	Currency         string        `json:"currency"`
	AmountDue        int64         `json:"amount_due"`
	AmountPaid       int64         `json:"amount_paid"`
	AmountRemaining  int64         `json:"amount_remaining"`
	Subtotal         int64         `json:"subtotal"`
	Total            int64         `json:"total"`
	Tax              int64         `json:"tax,omitempty"`
	AttemptCount     int64         `json:"attempt_count"`
	BillingReason    string        `json:"billing_reason,omitempty"`
	LastPaymentError string        `json:"last_payment_error,omitempty"`
	HostedInvoiceURL string        `json:"hosted_invoice_url,omitempty"`
	InvoicePDF       string        `json:"invoice_pdf,omitempty"`
	PaymentIntentID  string        `json:"stripe_payment_intent_id,omitempty"`
	Description      string        `json:"description,omitempty"`
	DueDate          *time.Time    `json:"due_date,omitempty"`
	PeriodStart      *time.Time    `json:"period_start,omitempty"`
	PeriodEnd        *time.Time    `json:"period_end,omitempty"`
	Created          time.Time     `json:"created"`
	PaidAt           *time.Time    `json:"paid_at,omitempty"`
	Lines            []InvoiceLine `json:"lines"`
}

// InvoiceLine is one line item of an invoice.
type InvoiceLine struct {
	ID          string     `json:"id"`
	Description string     `json:"description,omitempty"`
	PriceID     string     `json:"stripe_price_id,omitempty"`
	Currency    string     `json:"currency"`
	Amount      int64      `json:"amount"`
	Quantity    int64      `json:"quantity"`
	PeriodStart *time.Time `json:"period_start,omitempty"`
	PeriodEnd   *time.Time `json:"period_end,omitempty"`
}

package tollgate

// ImportBatch is everything one migration writes, in one store transaction (all or nothing):
// subscriptions with their usage this period, billing history, the Stripe events the old
// application processed (so that a redelivery at cut-over is a duplicate) and capacity
// snapshots.
type ImportBatch struct {
	Subscriptions []ImportRecord
	Invoices      []Invoice
	Events        []WebhookEvent
	Snapshots     []CapacitySnapshot
}

// EventSourceImport is the WebhookEvent.Source of events brought over from the old
// application's log.
const EventSourceImport = "import"

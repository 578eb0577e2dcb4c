package newsletter

import (
	"slices"
	"time"
)

// DeliveryStatus is where one reader's copy of one digest stands in the
// ledger: queued → sending (under a lease) → sent | skipped | failed | unknown.
// A sent copy may later turn bounced or complained through provider feedback.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryQueued     DeliveryStatus = "queued"
	DeliverySending    DeliveryStatus = "sending"
	DeliverySent       DeliveryStatus = "sent"
	DeliverySkipped    DeliveryStatus = "skipped"
	DeliveryFailed     DeliveryStatus = "failed"
	DeliveryUnknown    DeliveryStatus = "unknown"
	DeliveryBounced    DeliveryStatus = "bounced"
	DeliveryComplained DeliveryStatus = "complained"
)

// DeliveryStatuses lists every delivery status.
var DeliveryStatuses = []DeliveryStatus{
	DeliveryQueued, DeliverySending, DeliverySent, DeliverySkipped,
	DeliveryFailed, DeliveryUnknown, DeliveryBounced, DeliveryComplained,
}

// Settled reports whether no more sending will happen for the row.
func (s DeliveryStatus) Settled() bool {
	switch s {
	case DeliverySent, DeliverySkipped, DeliveryFailed, DeliveryBounced, DeliveryComplained:
		return true
	}
	return false
}

// Delivery is a ledger row: one reader's copy of one digest.
type Delivery struct {
	DigestID     string         `json:"digestId"`
	SubscriberID string         `json:"subscriberId"`
	Status       DeliveryStatus `json:"status"`
	LeaseUntil   time.Time      `json:"leaseUntil,omitzero"` // while sending
	Attempts     int            `json:"attempts"`
	MessageID    string         `json:"messageId,omitempty"` // the provider's, once sent
	Reason       string         `json:"reason,omitempty"`    // why skipped or failed
	UpdatedAt    time.Time      `json:"updatedAt"`
}

// Claim is what ClaimDeliveries did to one row: the row as it stands after
// the call (nil when there is none) and whether the call claimed it.
type Claim struct {
	Row     *Delivery
	Claimed bool
}

// Outcome is what became of one reader's copy: the status its ledger row
// takes, with the provider's message ID once sent, or why it was not.
type Outcome struct {
	SubscriberID string
	Status       DeliveryStatus
	MessageID    string
	Reason       string
}

// Counters are the number of ledger rows of a digest in each status.
type Counters struct {
	Total      int64 `json:"total"`
	Queued     int64 `json:"queued"`
	Sending    int64 `json:"sending"`
	Sent       int64 `json:"sent"`
	Skipped    int64 `json:"skipped"`
	Failed     int64 `json:"failed"`
	Unknown    int64 `json:"unknown"`
	Bounced    int64 `json:"bounced"`
	Complained int64 `json:"complained"`
}

// Add adds n to the counter of status s (and not to Total).
func (c *Counters) Add(s DeliveryStatus, n int64) {
	switch s {
	case DeliveryQueued:
		c.Queued += n
	case DeliverySending:
		c.Sending += n
	case DeliverySent:
		c.Sent += n
	case DeliverySkipped:
		c.Skipped += n
	case DeliveryFailed:
		c.Failed += n
	case DeliveryUnknown:
		c.Unknown += n
	case DeliveryBounced:
		c.Bounced += n
	case DeliveryComplained:
		c.Complained += n
	}
}

// Merge adds every counter of o to c, Total included.
func (c *Counters) Merge(o Counters) {
	c.Total += o.Total
	c.Queued += o.Queued
	c.Sending += o.Sending
	c.Sent += o.Sent
	c.Skipped += o.Skipped
	c.Failed += o.Failed
	c.Unknown += o.Unknown
	c.Bounced += o.Bounced
	c.Complained += o.Complained
}

// Settled returns the number of rows no longer in flight.
func (c Counters) Settled() int64 {
	return c.Sent + c.Skipped + c.Failed + c.Bounced + c.Complained
}

// DeliveriesDigest checks the rows of a CreateDeliveries call and returns
// their digest's ID: EINVALID for a row without its keys, or rows of more
// than one digest. Every store checks the call with it, so that all of
// them refuse the same calls.
func DeliveriesDigest(rows []*Delivery) (string, error) {
	digestID := ""
	for _, d := range rows {
		if d == nil || d.DigestID == "" || d.SubscriberID == "" {
			return "", Errorf(EINVALID, "Delivery digest and subscriber IDs are required.")
		}
		if digestID == "" {
			digestID = d.DigestID
		} else if d.DigestID != digestID {
			return "", Errorf(EINVALID, "Deliveries created together must be of one digest.")
		}
	}
	return digestID, nil
}

// CheckOutcomes checks the outcomes of a SettleDeliveries call: EINVALID
// for one without a subscriber ID or with a status that is not one of
// DeliveryStatuses.
func CheckOutcomes(outcomes []Outcome) error {
	for _, o := range outcomes {
		if o.SubscriberID == "" || !slices.Contains(DeliveryStatuses, o.Status) {
			return Errorf(EINVALID, "An outcome needs a subscriber ID and a delivery status.")
		}
	}
	return nil
}

package bolt

import (
	"context"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// CreateSubscriber adds a reader. ECONFLICT when the ID or the address
// (compared by EmailKey) is taken; EINVALID without an ID or an address.
func (s *Store) CreateSubscriber(ctx context.Context, sub *newsletter.Subscriber) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if sub == nil || sub.ID == "" || sub.Email == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Subscriber ID and email are required.")
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		b, emails := tx.Bucket(bucketSubscribers), tx.Bucket(bucketSubscriberEmails)
		key := newsletter.EmailKey(sub.Email)
		if b.Get([]byte(sub.ID)) != nil {
			return newsletter.Errorf(newsletter.ECONFLICT, "A subscriber with this ID exists.")
		}
		if emails.Get([]byte(key)) != nil {
			return newsletter.Errorf(newsletter.ECONFLICT, "This email address is already subscribed.")
		}
		if err := putSubscriber(b, sub); err != nil {
			return fmt.Errorf("create subscriber: %w", err)
		}
		if err := emails.Put([]byte(key), []byte(sub.ID)); err != nil {
			return fmt.Errorf("create subscriber %s: index email: %w", sub.ID, err)
		}
		return nil
	})
}

// Subscriber returns the reader with the ID. ENOTFOUND.
func (s *Store) Subscriber(ctx context.Context, id string) (*newsletter.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sub *newsletter.Subscriber
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		sub, err = subscriber(tx, id)
		return err
	})
	return sub, err
}

// SubscriberByEmail returns the reader with the address, compared by
// EmailKey. ENOTFOUND.
func (s *Store) SubscriberByEmail(ctx context.Context, email string) (*newsletter.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sub *newsletter.Subscriber
	err := s.db.View(func(tx *bbolt.Tx) (err error) {
		id := tx.Bucket(bucketSubscriberEmails).Get([]byte(newsletter.EmailKey(email)))
		if id == nil {
			return notFound("Subscriber")
		}
		sub, err = subscriber(tx, string(id))
		if newsletter.ErrorCode(err) == newsletter.ENOTFOUND {
			return fmt.Errorf("subscriber by email: index names missing subscriber %s", id)
		}
		return err
	})
	return sub, err
}

// UpdateSubscriber changes a reader through fn in one transaction.
// ENOTFOUND, EINVALID when fn changed the ID or the address, or fn's error.
func (s *Store) UpdateSubscriber(ctx context.Context, id string, fn func(*newsletter.Subscriber) error) (*newsletter.Subscriber, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sub *newsletter.Subscriber
	err := s.db.Update(func(tx *bbolt.Tx) (err error) {
		if sub, err = subscriber(tx, id); err != nil {
			return err
		}
		email := sub.Email
		if err := fn(sub); err != nil {
			return err
		}
		if sub.ID != id || sub.Email != email {
			return newsletter.Errorf(newsletter.EINVALID, "A subscriber's ID and email cannot be changed.")
		}
		if err := putSubscriber(tx.Bucket(bucketSubscribers), sub); err != nil {
			return fmt.Errorf("update subscriber: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// DeleteSubscriber erases a reader and frees the address. ENOTFOUND.
func (s *Store) DeleteSubscriber(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		sub, err := subscriber(tx, id)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketSubscribers).Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete subscriber %s: %w", id, err)
		}
		emails := tx.Bucket(bucketSubscriberEmails)
		key := []byte(newsletter.EmailKey(sub.Email))
		if string(emails.Get(key)) == id {
			if err := emails.Delete(key); err != nil {
				return fmt.Errorf("delete subscriber %s: unindex email: %w", id, err)
			}
		}
		return nil
	})
}

// Subscribers lists readers matching f, ordered by ID, a page at a time.
// EINVALID for a cursor this listing did not return.
func (s *Store) Subscribers(ctx context.Context, f newsletter.SubscriberFilter, p newsletter.Page) ([]*newsletter.Subscriber, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	after, err := decodeCursor(cursorSubscribers, p.Cursor, 1)
	if err != nil {
		return nil, "", err
	}
	sc := scan[*newsletter.Subscriber]{
		kind: cursorSubscribers,
		visit: func(k, v []byte) (*newsletter.Subscriber, bool, bool, error) {
			sub, err := decodeSubscriber(v, string(k))
			if err != nil {
				return nil, false, false, fmt.Errorf("list subscribers: decode %q: %w", k, err)
			}
			return sub, f.Match(sub), false, nil
		},
	}
	var (
		out  []*newsletter.Subscriber
		next string
	)
	err = s.db.View(func(tx *bbolt.Tx) (err error) {
		out, next, err = sc.page(tx.Bucket(bucketSubscribers).Cursor(), after, p.Size())
		return err
	})
	s.upkeep()
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

// subscriber reads the reader with the ID. ENOTFOUND.
func subscriber(tx *bbolt.Tx, id string) (*newsletter.Subscriber, error) {
	sub, err := getSubscriber(tx.Bucket(bucketSubscribers), id)
	if err != nil {
		return nil, err
	} else if sub == nil {
		return nil, notFound("Subscriber")
	}
	return sub, nil
}

// getSubscriber decodes the reader under id, nil when there is none.
func getSubscriber(b *bbolt.Bucket, id string) (*newsletter.Subscriber, error) {
	data := b.Get([]byte(id))
	if data == nil {
		return nil, nil
	}
	sub, err := decodeSubscriber(data, id)
	if err != nil {
		return nil, fmt.Errorf("decode subscriber %q: %w", id, err)
	}
	return sub, nil
}

// putSubscriber stores a reader under its ID, in the binary form.
func putSubscriber(b *bbolt.Bucket, sub *newsletter.Subscriber) error {
	if err := b.Put([]byte(sub.ID), appendSubscriber(make([]byte, 0, 160), sub)); err != nil {
		return fmt.Errorf("put subscriber %q: %w", sub.ID, err)
	}
	return nil
}

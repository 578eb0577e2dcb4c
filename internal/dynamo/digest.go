package dynamo

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// digestItem is a digest as stored. Digest.FanoutCursor is left out of the
// digest's JSON (it is no business of an API client), but the store must
// keep it, so it gets an attribute of its own.
//
// The articles, most of the item, are kept as gzip'd JSON in one binary
// attribute, articlesGzip, rather than as a list of maps: a digest is
// read by every send task (strongly consistent, a unit per 4 KB) and
// written at every fan-out page, and each write is billed twice (the item
// and its GSI2 copy, a unit per 1 KB each). Ten articles of 0.6 KB take
// about 2.5 KB so instead of 9. Items written before keep an articles
// list, which is still read.
type digestItem struct {
	keys
	newsletter.Digest
	FanoutCursor string `json:"fanoutCursor,omitempty"`
	ArticlesGzip []byte `json:"articlesGzip,omitempty"`
}

const attrArticles = "articles"

func digestKey(id string) item { return key(prefixDigest+id, skDigest) }

func encodeDigest(d *newsletter.Digest, v int64) (item, error) {
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	if err := json.NewEncoder(w).Encode(d.Articles); err != nil {
		return nil, fmt.Errorf("encode digest %s: articles: %w", d.ID, err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encode digest %s: articles: %w", d.ID, err)
	}
	rec := digestItem{
		keys: keys{
			PK: prefixDigest + d.ID, SK: skDigest, Type: typeDigest,
			GSI2PK: listDigests, GSI2SK: timeKey(d.CreatedAt) + "#" + d.ID,
			Version: v,
		},
		Digest:       *d,
		FanoutCursor: d.FanoutCursor,
		ArticlesGzip: z.Bytes(),
	}
	rec.Digest.Articles = nil
	it, err := marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode digest %s: %w", d.ID, err)
	}
	delete(it, attrArticles)
	return it, nil
}

func decodeDigest(it item) (*digestItem, error) {
	var rec digestItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("decode digest %v: %w", it[attrPK], err)
	}
	rec.Digest.FanoutCursor = rec.FanoutCursor
	if len(rec.ArticlesGzip) > 0 {
		r, err := gzip.NewReader(bytes.NewReader(rec.ArticlesGzip))
		if err != nil {
			return nil, fmt.Errorf("decode digest %v: articles: %w", it[attrPK], err)
		}
		if err := json.NewDecoder(r).Decode(&rec.Articles); err != nil {
			return nil, fmt.Errorf("decode digest %v: articles: %w", it[attrPK], err)
		}
		rec.ArticlesGzip = nil
	}
	return &rec, nil
}

// digest reads the digest with the ID. ENOTFOUND.
func (s *Store) digest(ctx context.Context, id string, consistent bool) (*digestItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if id == "" {
		return nil, notFound("Digest")
	}
	it, err := s.getItem(ctx, digestKey(id), consistent)
	if err != nil {
		return nil, fmt.Errorf("get digest %s: %w", id, err)
	}
	if it == nil {
		return nil, notFound("Digest")
	}
	return decodeDigest(it)
}

// CreateDigest adds a digest with a conditional put. ECONFLICT when its ID
// exists; EINVALID without an ID.
func (s *Store) CreateDigest(ctx context.Context, d *newsletter.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d == nil || d.ID == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Digest ID is required.")
	}
	it, err := encodeDigest(d, 1)
	if err != nil {
		return err
	}
	err = s.putItem(ctx, &dynamodb.PutItemInput{Item: it, ConditionExpression: condNew})
	if conditionFailed(err) {
		return newsletter.Errorf(newsletter.ECONFLICT, "A digest for this period exists.")
	} else if err != nil {
		return fmt.Errorf("create digest %s: %w", d.ID, err)
	}
	return nil
}

// Digest returns the digest with the ID. ENOTFOUND.
func (s *Store) Digest(ctx context.Context, id string) (*newsletter.Digest, error) {
	rec, err := s.digest(ctx, id, true)
	if err != nil {
		return nil, err
	}
	return &rec.Digest, nil
}

// UpdateDigest changes a digest through fn, with a write conditional on
// the version it read. ENOTFOUND, EINVALID when fn changed the ID, or fn's
// error.
func (s *Store) UpdateDigest(ctx context.Context, id string, fn func(*newsletter.Digest) error) (*newsletter.Digest, error) {
	return updateVersioned(s, ctx, "digest "+id,
		func(consistent bool) (newsletter.Digest, int64, error) {
			rec, err := s.digest(ctx, id, consistent)
			if err != nil {
				return newsletter.Digest{}, 0, err
			}
			return rec.Digest, rec.Version, nil
		},
		fn, func(d *newsletter.Digest) bool { return d.ID == id }, encodeDigest)
}

// Digests lists digests matching f, newest CreatedAt first (ties by ID,
// highest first), a page at a time: GSI2 read backwards, with a filter.
// EINVALID for a cursor this listing did not return.
func (s *Store) Digests(ctx context.Context, f newsletter.DigestFilter, p newsletter.Page) ([]*newsletter.Digest, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	l := &listing{
		name: "digests", index: GSI2, pkAttr: attrGSI2PK, skAttr: attrGSI2SK, pk: listDigests,
		keyCond: attrGSI2PK + " = :pk", values: item{":pk": str(listDigests)},
		names: map[string]string{}, backward: true,
	}
	var conds []string
	if f.Frequency != "" {
		conds = append(conds, "#frequency = :frequency")
		l.names["#frequency"] = "frequency"
		l.values[":frequency"] = str(string(f.Frequency))
	}
	if f.Status != "" {
		conds = append(conds, "#status = :status")
		l.names["#status"] = "status"
		l.values[":status"] = str(string(f.Status))
	}
	for i, c := range conds {
		if i > 0 {
			l.filter += " AND "
		}
		l.filter += c
	}
	items, next, err := s.page(ctx, l, p)
	if err != nil {
		return nil, "", fmt.Errorf("list digests: %w", err)
	}
	out := make([]*newsletter.Digest, 0, len(items))
	for _, it := range items {
		rec, err := decodeDigest(it)
		if err != nil {
			return nil, "", fmt.Errorf("list digests: %w", err)
		}
		out = append(out, &rec.Digest)
	}
	return out, next, nil
}

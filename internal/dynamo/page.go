package dynamo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// cursor is what a page cursor holds before it is encoded: the listing
// that returned it and the key to resume after (an ExclusiveStartKey,
// every attribute of which is a string).
type cursor struct {
	Listing string            `json:"l"`
	Key     map[string]string `json:"k"`
}

var errBadCursor = newsletter.Errorf(newsletter.EINVALID, "Page cursor is not valid.")

// listing is one paged Query.
type listing struct {
	name  string // tells cursors of different listings apart
	index string // "" for the table
	// pkAttr and pk are the partition the listing reads; cursors must
	// name it. skPrefix, when set, is what every sort key starts with.
	pkAttr, pk string
	skAttr     string
	skPrefix   string
	keyCond    string
	filter     string
	names      map[string]string
	values     item
	backward   bool
	consistent bool
}

// keyAttrs returns the attributes of the listing's ExclusiveStartKey.
func (l *listing) keyAttrs() []string {
	if l.index == "" {
		return []string{attrPK, attrSK}
	}
	return []string{l.pkAttr, l.skAttr, attrPK, attrSK}
}

func (l *listing) encodeCursor(it item) (string, error) {
	c := cursor{Listing: l.name, Key: map[string]string{}}
	for _, a := range l.keyAttrs() {
		v, ok := it[a].(*types.AttributeValueMemberS)
		if !ok {
			return "", fmt.Errorf("cursor: item has no string %s", a)
		}
		c.Key[a] = v.Value
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("cursor: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// decodeCursor returns the ExclusiveStartKey a cursor of this listing
// holds, nil for "". EINVALID for anything this listing did not return.
func (l *listing) decodeCursor(s string) (item, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errBadCursor
	}
	var c cursor
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.Listing != l.name {
		return nil, errBadCursor
	}
	attrs := l.keyAttrs()
	if !slices.Equal(slices.Sorted(maps.Keys(c.Key)), slices.Sorted(slices.Values(attrs))) {
		return nil, errBadCursor
	}
	for _, a := range attrs {
		if c.Key[a] == "" {
			return nil, errBadCursor
		}
	}
	if c.Key[l.pkAttr] != l.pk || !strings.HasPrefix(c.Key[l.skAttr], l.skPrefix) {
		return nil, errBadCursor
	}
	start := item{}
	for a, v := range c.Key {
		start[a] = str(v)
	}
	return start, nil
}

// page runs the listing from the cursor in p and returns up to p.Size()
// items and the cursor of the next page, "" when no item is left.
// DynamoDB applies Limit before the filter, so it queries until the page
// is full or the partition ends; it reads one matching item past the page
// so that the last page says so.
func (s *Store) page(ctx context.Context, l *listing, p newsletter.Page) ([]item, string, error) {
	start, err := l.decodeCursor(p.Cursor)
	if err != nil {
		return nil, "", err
	}
	need := p.Size()
	var out []item
	for round := 0; ; round++ {
		limit := need + 1 - len(out)
		if l.filter != "" && round > 0 {
			// The filter dropped items: read further ahead per request.
			limit = max(limit, 100)
		}
		in := &dynamodb.QueryInput{
			KeyConditionExpression:    &l.keyCond,
			ExpressionAttributeValues: l.values,
			ExclusiveStartKey:         start,
			Limit:                     aws.Int32(int32(limit)),
			ScanIndexForward:          aws.Bool(!l.backward),
		}
		if len(l.names) > 0 {
			in.ExpressionAttributeNames = l.names
		}
		if l.filter != "" {
			in.FilterExpression = &l.filter
		}
		if l.index != "" {
			in.IndexName = &l.index
		} else {
			in.ConsistentRead = aws.Bool(l.consistent)
		}
		res, err := s.query(ctx, in)
		if err != nil {
			var ae smithy.APIError
			if p.Cursor != "" && errors.As(err, &ae) && ae.ErrorCode() == "ValidationException" {
				return nil, "", errBadCursor // a start key outside the query's bounds
			}
			return nil, "", err
		}
		for _, it := range res.Items {
			if len(out) == need {
				// it is one past the page: the page ends at the item before.
				next, err := l.encodeCursor(out[need-1])
				if err != nil {
					return nil, "", err
				}
				return out, next, nil
			}
			out = append(out, it)
		}
		if res.LastEvaluatedKey == nil {
			return out, "", nil
		}
		if len(out) == need {
			// Full, and the answer ended here: resume where DynamoDB
			// stopped rather than read ahead through filtered items.
			next, err := l.encodeCursor(res.LastEvaluatedKey)
			if err != nil {
				return nil, "", err
			}
			return out, next, nil
		}
		start = res.LastEvaluatedKey
	}
}

package dynamo

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/broadsheet-news/broadsheet/internal/newsletter"
)

// tokenItem is an editor token as stored, under its ID and, as a copy,
// under its hash. EditorToken.Hash is left out of the token's JSON so that
// it never reaches a client, but the store must keep it.
type tokenItem struct {
	keys
	newsletter.EditorToken
	Hash string `json:"hash"`
}

func tokenKey(id string) item       { return key(prefixToken+id, skToken) }
func tokenHashKey(hash string) item { return key(prefixTokenHash+hash, skTokenHash) }

func decodeToken(it item) (*newsletter.EditorToken, error) {
	var rec tokenItem
	if err := unmarshal(it, &rec); err != nil {
		return nil, fmt.Errorf("decode editor token %v: %w", it[attrPK], err)
	}
	t := rec.EditorToken
	t.Hash = rec.Hash
	return &t, nil
}

// CreateEditorToken stores an editor token under its ID and its hash, in
// one transaction. ECONFLICT when its ID or hash exists; EINVALID without
// an ID or a hash.
func (s *Store) CreateEditorToken(ctx context.Context, t *newsletter.EditorToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if t == nil || t.ID == "" || t.Hash == "" {
		return newsletter.Errorf(newsletter.EINVALID, "Editor token ID and hash are required.")
	}
	byID, err := marshal(tokenItem{
		keys: keys{
			PK: prefixToken + t.ID, SK: skToken, Type: typeToken,
			GSI2PK: listTokens, GSI2SK: timeKey(t.CreatedAt) + "#" + t.ID, Version: 1,
		},
		EditorToken: *t, Hash: t.Hash,
	})
	if err != nil {
		return fmt.Errorf("create editor token %s: encode: %w", t.ID, err)
	}
	byHash, err := marshal(tokenItem{
		keys:        keys{PK: prefixTokenHash + t.Hash, SK: skTokenHash, Type: typeTokenHash, Version: 1},
		EditorToken: *t, Hash: t.Hash,
	})
	if err != nil {
		return fmt.Errorf("create editor token %s: encode: %w", t.ID, err)
	}
	for range maxAttempts {
		err = s.transact(ctx,
			types.TransactWriteItem{Put: &types.Put{Item: byID, ConditionExpression: condNew}},
			types.TransactWriteItem{Put: &types.Put{Item: byHash, ConditionExpression: condNew}},
		)
		failed, retry, _ := transactOutcome(err)
		switch {
		case err == nil:
			return nil
		case failed >= 0:
			return newsletter.Errorf(newsletter.ECONFLICT, "This editor token exists.")
		case !retry:
			return fmt.Errorf("create editor token %s: %w", t.ID, err)
		}
	}
	return fmt.Errorf("create editor token %s: %w", t.ID, err)
}

// EditorTokenByHash returns the token whose secret hashes to hash: one
// strongly consistent GetItem of the copy kept under the hash. ENOTFOUND.
func (s *Store) EditorTokenByHash(ctx context.Context, hash string) (*newsletter.EditorToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if hash == "" {
		return nil, notFound("Editor token")
	}
	it, err := s.getItem(ctx, tokenHashKey(hash), true)
	if err != nil {
		return nil, fmt.Errorf("get editor token by hash: %w", err)
	}
	if it == nil {
		return nil, notFound("Editor token")
	}
	return decodeToken(it)
}

// EditorTokens lists every editor token, oldest first (ties by ID), from
// GSI2.
func (s *Store) EditorTokens(ctx context.Context) ([]*newsletter.EditorToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in := &dynamodb.QueryInput{
		IndexName:                 aws.String(GSI2),
		KeyConditionExpression:    aws.String(attrGSI2PK + " = :pk"),
		ExpressionAttributeValues: item{":pk": str(listTokens)},
	}
	var out []*newsletter.EditorToken
	for {
		res, err := s.query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list editor tokens: %w", err)
		}
		for _, it := range res.Items {
			t, err := decodeToken(it)
			if err != nil {
				return nil, fmt.Errorf("list editor tokens: %w", err)
			}
			out = append(out, t)
		}
		if res.LastEvaluatedKey == nil {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// DeleteEditorToken revokes a token, deleting it under its ID and its
// hash in one transaction. ENOTFOUND.
func (s *Store) DeleteEditorToken(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return notFound("Editor token")
	}
	it, err := s.getItem(ctx, tokenKey(id), true)
	if err != nil {
		return fmt.Errorf("delete editor token %s: %w", id, err)
	}
	if it == nil {
		return notFound("Editor token")
	}
	t, err := decodeToken(it)
	if err != nil {
		return err
	}
	err = s.transact(ctx,
		types.TransactWriteItem{Delete: &types.Delete{Key: tokenKey(id), ConditionExpression: aws.String("attribute_exists(pk)")}},
		types.TransactWriteItem{Delete: &types.Delete{
			Key:                       tokenHashKey(t.Hash),
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #id = :id"),
			ExpressionAttributeNames:  map[string]string{"#id": "id"},
			ExpressionAttributeValues: item{":id": str(id)},
		}},
	)
	if failed, _, _ := transactOutcome(err); failed == 0 {
		return notFound("Editor token") // deleted by someone else meanwhile
	} else if err != nil {
		return fmt.Errorf("delete editor token %s: %w", id, err)
	}
	return nil
}

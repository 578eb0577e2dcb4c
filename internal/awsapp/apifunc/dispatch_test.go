package apifunc

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
)

type fakeInvoker struct{ in *lambda.InvokeInput }

func (f *fakeInvoker) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	f.in = in
	if aws.ToString(in.FunctionName) == "missing" {
		return nil, errors.New("ResourceNotFoundException")
	}
	return &lambda.InvokeOutput{StatusCode: 202}, nil
}

func TestLambdaDispatcher(t *testing.T) {
	f := &fakeInvoker{}
	d := &LambdaDispatcher{Invoke: f.Invoke, FunctionName: "broadsheet-DigestFunction"}
	if err := d.Dispatch(context.Background(), "daily-2026-11-26"); err != nil {
		t.Fatal(err)
	}
	if f.in.InvocationType != types.InvocationTypeEvent || aws.ToString(f.in.FunctionName) != "broadsheet-DigestFunction" {
		t.Errorf("invoke %+v, want an Event invocation of the digest function", f.in)
	}
	ev, err := awsapp.ParseDigestEvent(f.in.Payload)
	if err != nil || ev.DigestID != "daily-2026-11-26" {
		t.Errorf("payload %s decodes as %+v, %v", f.in.Payload, ev, err)
	}
	d.FunctionName = "missing"
	if err := d.Dispatch(context.Background(), "daily-2026-11-26"); err == nil {
		t.Error("a failed invoke was not reported")
	}
}

package sesmail

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/broadsheet-news/broadsheet/internal/awsapp"
	"github.com/broadsheet-news/broadsheet/internal/delivery"
	"github.com/broadsheet-news/broadsheet/internal/eml"
)

// fakeSES answers GetAccount with a maximum send rate and every
// SendBulkEmail with success, and keeps how many entries each call had.
type fakeSES struct {
	rate  float64
	mu    sync.Mutex
	calls []int
}

func (f *fakeSES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v2/email/account":
		fmt.Fprintf(w, `{"SendQuota":{"Max24HourSend":50000,"MaxSendRate":%v,"SentLast24Hours":0},"ProductionAccessEnabled":true,"SendingEnabled":true}`, f.rate)
	case r.Method == http.MethodPost && r.URL.Path == "/v2/email/outbound-bulk-emails":
		body, _ := io.ReadAll(r.Body)
		var in struct{ BulkEmailEntries []json.RawMessage }
		_ = json.Unmarshal(body, &in)
		f.mu.Lock()
		f.calls = append(f.calls, len(in.BulkEmailEntries))
		f.mu.Unlock()
		results := make([]string, len(in.BulkEmailEntries))
		for i := range results {
			results[i] = fmt.Sprintf(`{"Status":"SUCCESS","MessageId":"m-%d"}`, i)
		}
		fmt.Fprintf(w, `{"BulkEmailEntryResults":[%s]}`, strings.Join(results, ","))
	default:
		http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
	}
}

// TestBulkSizeFollowsTheAccount: the sender's mail, told the pace its
// account's maximum send rate gives (as awsapp.LoadSender does), sends 60
// readers of one edition in calls of at most a second's sending.
func TestBulkSizeFollowsTheAccount(t *testing.T) {
	for _, tc := range []struct {
		rate    float64
		senders int
		calls   []int
	}{
		{1, 1, repeat(1, 60)},
		{14, 1, append(repeat(11, 5), 5)},
		{200, 1, []int{50, 10}},
		{200, 5, []int{32, 28}},
	} {
		t.Run(fmt.Sprintf("%v per second, %d senders", tc.rate, tc.senders), func(t *testing.T) {
			f := &fakeSES{rate: tc.rate}
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := aws.Config{Region: "eu-west-1", Credentials: aws.AnonymousCredentials{}, BaseEndpoint: aws.String(srv.URL)}
			mail := New(cfg, "")
			rate, err := mail.MaxSendRate(context.Background())
			if err != nil || rate != tc.rate {
				t.Fatalf("MaxSendRate: %v, %v; want %v", rate, err, tc.rate)
			}
			mail.SetBulkSize(awsapp.PaceFor(rate, tc.senders).BulkSize)
			bulk, ok := mail.Mailer.(delivery.BulkMailer)
			if !ok {
				t.Fatal("the sender's mailer does not send in bulk")
			}
			l, err := eml.NewLayout("Daily", nil, []byte("Daily\nUnsubscribe: PHxU\n"), "PHxU")
			if err != nil {
				t.Fatal(err)
			}
			var msgs []*eml.Message
			for i := range 60 {
				msgs = append(msgs, &eml.Message{From: "news@example.com", To: fmt.Sprintf("r%d@example.com", i), Layout: l, Values: []string{"https://x.example/u"}})
			}
			for _, s := range bulk.SendBulk(context.Background(), msgs) {
				if s.Err != nil {
					t.Fatal(s.Err)
				}
			}
			// A layout's calls run at once, in any order.
			slices.Sort(f.calls)
			slices.Sort(tc.calls)
			if fmt.Sprint(f.calls) != fmt.Sprint(tc.calls) {
				t.Errorf("calls of %v destinations, want %v", f.calls, tc.calls)
			}
		})
	}
}

func repeat(n, times int) []int {
	out := make([]int, times)
	for i := range out {
		out[i] = n
	}
	return out
}

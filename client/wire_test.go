package client

import (
	"container/list"
	"context"
	"encoding/json"
	"testing"
)

// A body decodes to its text whatever the quoting: the fast path (no
// escapes) and the decoder's path agree, objects stay JSON text.
func TestTextOrJSONBodies(t *testing.T) {
	for raw, want := range map[string]string{
		`"QUJD+/="`:            "QUJD+/=",
		`"http://x/y?a=1&b"`:   "http://x/y?a=1&b",
		`"a\"b\\c\n"`:          "a\"b\\c\n",
		`"\u00e9t\u00e9"`:      "été",
		`"été"`:                "été",
		"\"a\xffb\"":           "a\ufffdb",
		`""`:                   "",
		`null`:                 "",
		`{"id":"x","n":[1,2]}`: `{"id":"x","n":[1,2]}`,
	} {
		var v struct {
			Body textOrJSON `json:"body"`
		}
		if err := json.Unmarshal([]byte(`{"body":`+raw+`}`), &v); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if string(v.Body) != want {
			t.Errorf("%s decoded to %q, want %q", raw, v.Body, want)
		}
	}
}

// The channel's events reach their waiters with every field, in one pass.
func TestDispatchFillsEventsAndRequests(t *testing.T) {
	s := &Session{events: make(chan Event, 2), outcomes: map[string]*list.Element{}, order: list.New(),
		waiters: map[string][]chan struct{}{}, requests: map[string]RequestEvent{}, reqWaiters: map[string][]chan struct{}{}}
	s.dispatch([]byte(`{"channel":"c","data":{"type":"X-DPT-CAB-REQUEST-ID","id":"r1","command_status":2,"data_context":"ctx","output_type":0,"body":"QUJD"}}`))
	s.dispatch([]byte(`{"channel":"c","data":{"type":"X-DPT-CAB-ID","id":"c1","command_status":2,"body":{"deviceIdentifier":"d"}}}`))
	if re := s.requests["r1"]; re != (RequestEvent{ID: "r1", CommandStatus: 2, DataContext: "ctx", Body: "QUJD"}) {
		t.Fatalf("request event %+v", re)
	}
	if el := s.outcomes["c1"]; el == nil || el.Value.(cached).body != `{"deviceIdentifier":"d"}` {
		t.Fatalf("command outcome %v", el)
	}
	if ev := <-s.events; ev.Type != "X-DPT-CAB-REQUEST-ID" || string(ev.Raw) != `{"type":"X-DPT-CAB-REQUEST-ID","id":"r1","command_status":2,"data_context":"ctx","output_type":0,"body":"QUJD"}` {
		t.Fatalf("event %+v (raw %s)", ev, ev.Raw)
	}
	if ev := <-s.events; ev.Body != `{"deviceIdentifier":"d"}` || string(ev.Raw) != `{"type":"X-DPT-CAB-ID","id":"c1","command_status":2,"body":{"deviceIdentifier":"d"}}` {
		t.Fatalf("event %+v (raw %s)", ev, ev.Raw)
	}
	// Spacing, other fields before and after, and what is not an event.
	s.dispatch([]byte(` { "other" : [1, {"a": "b"}] , "data" :  {"type":"STREAM-READY","id":"r2"} , "channel":"c"} `))
	if ev := <-s.events; ev.Type != "STREAM-READY" || ev.ID != "r2" || string(ev.Raw) != `{"type":"STREAM-READY","id":"r2"}` {
		t.Fatalf("event %+v (raw %s)", ev, ev.Raw)
	}
	for _, bad := range []string{`{"channel":"c"}`, `{"data":null}`, `{"data":"x"}`, `[1]`, `{"data":{"type":`, `not json`} {
		s.dispatch([]byte(bad))
		select {
		case ev := <-s.events:
			t.Fatalf("%s dispatched %+v", bad, ev)
		default:
		}
	}
}

// A wait for a data answer that gives up (its context ends, as Retrieve's
// does when the request was rejected before it ran and no answer will
// come) leaves no waiter behind.
func TestAwaitRequestThatGivesUpLeavesNoWaiter(t *testing.T) {
	s := &Session{done: make(chan struct{}), requests: map[string]RequestEvent{}, reqWaiters: map[string][]chan struct{}{}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AwaitRequest(ctx, "r1"); err != context.Canceled {
		t.Fatalf("AwaitRequest: %v", err)
	}
	if n := len(s.reqWaiters); n != 0 {
		t.Fatalf("%d request waiters left behind", n)
	}
}

package api

import "time"

// Reservation is the answer of retrieve-temporary-data-token: a reserved
// token space.
type Reservation struct {
	Token  string `json:"token"`  // tmp-…
	Stream string `json:"stream"` // single-use upload URL for a streamed payload
}

// PermanentToken is the answer of configure-file-meta: the token made
// permanent.
type PermanentToken struct {
	Token string `json:"token"` // dtk-…
}

// DataRequest is the 202 answer of request-data: the command, and the id
// its X-DPT-CAB-REQUEST-ID answer event carries.
type DataRequest struct {
	CommandID string `json:"commandId"`
	RequestID string `json:"requestId"`
}

// RequestEvent is the data of an X-DPT-CAB-REQUEST-ID event: the answer to
// a data request.
type RequestEvent struct {
	Type          string `json:"type"`
	ID            string `json:"id"`             // the request id
	CommandStatus int    `json:"command_status"` // 2: the data; 3: failed, Body is the reason
	DataContext   string `json:"data_context"`
	OutputType    int    `json:"output_type"` // 0: Body is the base64 ciphertext; 1: Body is a download URL
	Body          string `json:"body"`
}

// DataToken is a data token in a listing.
type DataToken struct {
	Token       string         `json:"token"`
	Context     string         `json:"context"`
	Meta        map[string]any `json:"meta"`
	Application string         `json:"application"`
	CreatedAt   time.Time      `json:"createdAt"`
	UpdatedAt   time.Time      `json:"updatedAt"`
}

// DataTokenPage is a page of a listing of data tokens.
type DataTokenPage struct {
	Items []DataToken `json:"items"`
	Meta  PageMeta    `json:"meta"`
}

// PageMeta says where a page is in a listing.
type PageMeta struct {
	Count   int `json:"count"`
	Page    int `json:"page"`
	PerPage int `json:"perPage"`
	Total   int `json:"total"`
}

// TransactionStatistics are the transaction counts of a profile
// (transaction-statistics).
type TransactionStatistics struct {
	Exchange int        `json:"exchange"`
	Request  int        `json:"request"`
	Update   int        `json:"update"`
	Delete   int        `json:"delete"`
	ByDay    []DayCount `json:"byDay"`
}

// DayCount is one day of the transaction statistics.
type DayCount struct {
	Date     string `json:"date"`
	Exchange int    `json:"exchange"`
	Request  int    `json:"request"`
	Update   int    `json:"update"`
	Delete   int    `json:"delete"`
}

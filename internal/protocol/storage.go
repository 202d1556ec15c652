package protocol

// Storage device operations, the last token of the subject the engine
// sends to (To(prefix, device, op)). Each is a request; the reply carries
// the result, or an empty body and HeaderError.
const (
	OpStore  = "store"  // body: the sealed blob; reply: empty
	OpFetch  = "fetch"  // reply: the blob
	OpDelete = "delete" // reply: empty (also when the device never held it)
	OpList   = "list"   // reply: a JSON array of the blob ids the device holds
	OpHas    = "has"    // reply: empty, or ErrNotFound
)

// Chunked blobs (streamed payloads): the engine sends them chunk by chunk
// (OpChunk, HeaderSeq from 0, HeaderFinal on the last) and reads them back
// chunk by chunk (OpFetchChunk). Every chunk but the last has the same
// size, so chunk i starts at i × record size on the device.
const (
	OpChunk      = "chunk"
	OpFetchChunk = "fetchchunk"
)

// Headers of storage requests and replies.
const (
	HeaderBlob  = "Privicore-Blob"  // the blob a request is about
	HeaderError = "Privicore-Error" // a failure in a reply (the body is then empty)
	HeaderSeq   = "Privicore-Seq"   // a chunk's index, from 0
	HeaderFinal = "Privicore-Final" // set on the last chunk
)

// ErrNotFound is the HeaderError value for a blob the device does not hold.
const ErrNotFound = "not_found"

// DeviceError is a device's failure reply: Code is its HeaderError value
// (e.g. ErrNotFound).
type DeviceError struct{ Code string }

// Error implements error.
func (e *DeviceError) Error() string { return "device: " + e.Code }

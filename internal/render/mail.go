package render

// Mail is a transactional email, ready to put in an eml.Message. Package
// transactional builds them.
type Mail struct {
	Subject string
	HTML    []byte
	Text    []byte
}

package eml

// FastBytes is Bytes restricted to a layout message's fast path: ok is
// false when Bytes would build the message with jordan-wright/email.
func (m *Message) FastBytes() (b []byte, ok bool, err error) {
	s, err := m.validate()
	if err != nil || s == nil {
		return nil, false, err
	}
	b, ok = m.appendLayout(nil, s)
	return b, ok, nil
}

// Boundary returns the layout's MIME boundary ("" for a text-only layout).
func (l *Layout) Boundary() string { return l.prepared().boundary }

package auth

// DummyHash exposes dummyHash to the external tests.
const DummyHash = dummyHash

// OnGrant makes p call f with each key it serves, in serving order.
func (p *HashPool) OnGrant(f func(key string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.granted = f
}

// TurnOf exposes turnOf.
var TurnOf = turnOf

// SessionCount is how many verified credentials s keeps.
func (s *Service) SessionCount() int {
	if c := s.sessions(); c != nil {
		return c.len()
	}
	return 0
}

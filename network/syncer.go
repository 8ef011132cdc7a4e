package network

import (
	"bytes"

	"github.com/sirupsen/logrus"
)

// watch reloads the config on every event in the conf dir until the watcher
// is closed. Any event counts, even one for a file that is not a config: a
// reload is cheap, and it keeps the rule simple (the loaded config is always
// what the directory holds now).
func (m *Manager) watch() {
	defer close(m.done)
	for {
		select {
		case _, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			m.reload()
		case err, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
			// Events may have been lost (e.g. a queue overflow): reload anyway.
			m.log.WithError(err).Warn("network: watching config dir")
			m.reload()
		}
	}
}

// reload loads the conf dir and makes the result current, logging only
// when it differs from the previous one.
func (m *Manager) reload() {
	next := loadConfig(m.opts.ConfDir)
	m.mu.Lock()
	prev := m.conf
	m.conf = next
	m.mu.Unlock()
	if sameConfig(prev, next) {
		return
	}
	if next.err != nil {
		m.log.WithError(next.err).Warn("network: not ready")
		return
	}
	m.log.WithFields(logrus.Fields{
		"file":    next.file,
		"network": next.list.Name,
	}).Info("network: loaded config")
}

func sameConfig(a, b loadedConfig) bool {
	switch {
	case a.file != b.file || (a.err == nil) != (b.err == nil):
		return false
	case a.err != nil:
		return a.err.Error() == b.err.Error()
	default:
		return bytes.Equal(a.list.Bytes, b.list.Bytes)
	}
}

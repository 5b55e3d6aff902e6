//go:build !race

package hakoniwa

// raceEnabled is true when the race detector inflates our own memory.
const raceEnabled = false

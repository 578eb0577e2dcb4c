package main

import (
	"cmp"
	"strings"
)

// compareSemver compares two unprefixed semantic versions ("1.26.9",
// "0.0.0-20260626085133-7cb96ac80a6d") as golang.org/x/mod/semver.Compare
// compares them with a "v" in front: -1, 0 or +1; an invalid version is
// less than any valid one and equal to any other invalid one; build
// metadata is ignored; "1" and "1.2" stand for "1.0.0" and "1.2.0".
func compareSemver(a, b string) int {
	x, okx := parseSemver(a)
	y, oky := parseSemver(b)
	switch {
	case !okx && !oky:
		return 0
	case !okx:
		return -1
	case !oky:
		return 1
	}
	for i := range 3 {
		if c := compareNum(x.nums[i], y.nums[i]); c != 0 {
			return c
		}
	}
	return comparePrerelease(x.pre, y.pre)
}

type semver struct {
	nums [3]string // major, minor, patch: decimal, no leading zeros
	pre  string    // without the "-"; "" for a release
}

func parseSemver(v string) (semver, bool) {
	var s semver
	core, build, hasBuild := strings.Cut(v, "+")
	if hasBuild && !idents(build, false) {
		return s, false
	}
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre && !idents(pre, true) {
		return s, false
	}
	s.pre = pre
	parts := strings.Split(core, ".")
	if len(parts) > 3 || (hasPre || hasBuild) && len(parts) < 3 {
		return s, false // "1" and "1.2" take neither prerelease nor build
	}
	s.nums = [3]string{"0", "0", "0"}
	for i, p := range parts {
		if !isNum(p) {
			return s, false
		}
		s.nums[i] = p
	}
	return s, true
}

// idents reports whether s is one or more dot-separated identifiers of
// [0-9A-Za-z-]; for a prerelease a numeric one has no leading zero.
func idents(s string, pre bool) bool {
	for id := range strings.SplitSeq(s, ".") {
		if id == "" {
			return false
		}
		for _, c := range id {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-') {
				return false
			}
		}
		if pre && allDigits(id) && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func isNum(s string) bool { return allDigits(s) && (s == "0" || s[0] != '0') }

func compareNum(x, y string) int {
	if c := cmp.Compare(len(x), len(y)); c != 0 {
		return c
	}
	return strings.Compare(x, y)
}

// comparePrerelease: a release is above its prereleases; identifiers
// compare numerically when both are numbers, numbers sort before words,
// and a longer list wins when one is a prefix of the other.
func comparePrerelease(x, y string) int {
	switch {
	case x == y:
		return 0
	case x == "":
		return 1
	case y == "":
		return -1
	}
	xs, ys := strings.Split(x, "."), strings.Split(y, ".")
	for i := 0; i < len(xs) && i < len(ys); i++ {
		a, b := xs[i], ys[i]
		if a == b {
			continue
		}
		na, nb := allDigits(a), allDigits(b)
		switch {
		case na && nb:
			return compareNum(a, b)
		case na:
			return -1
		case nb:
			return 1
		}
		return strings.Compare(a, b)
	}
	return cmp.Compare(len(xs), len(ys))
}

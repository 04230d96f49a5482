//go:build !linux

package cache

import bolt "go.etcd.io/bbolt"

func adviseLoad(*bolt.DB, int64)   {}
func adviseLoaded(*bolt.DB, int64) {}

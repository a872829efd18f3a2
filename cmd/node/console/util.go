package console

import (
	"encoding/base64"
	"net/url"
)

func base64Std(b []byte) string      { return base64.StdEncoding.EncodeToString(b) }
func urlQueryEscape(s string) string { return url.QueryEscape(s) }
func urlPathEscape(s string) string  { return url.PathEscape(s) }

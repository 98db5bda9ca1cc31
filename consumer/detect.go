package consumer

// detectFormat is DetectFormat; placeholder until auto detection lands (issue 14).
func detectFormat(value []byte) string { return FormatRaterd }

package reqgen

import "github.com/prebid/openrtb/v20/adcom1"

// The vocabulary below is exported so the bidder's index builder can target
// exactly the values the generator emits: a campaign targeting a country,
// region, size or device type that no request carries would never win, and a
// load test against it would measure nothing. Weights are relative.

// Geo is one location the generator emits in device.geo. Country is ISO
// 3166-1 alpha-3 and Region ISO 3166-2 (without the country prefix), as
// OpenRTB 2.6 specifies.
type Geo struct {
	Country, Region, City, Metro, ZIP string
	Lat, Lon                          float64
	UTCOffset                         int64 // minutes
	IPPrefix                          [2]byte
	Weight                            uint32
}

// Geos is the location table, weighted roughly by ad-request volume. Every
// country is one the bidder's index is partitioned by (bidder.Countries).
var Geos = []Geo{
	{"USA", "CA", "Los Angeles", "803", "90012", 34.0522, -118.2437, -480, [2]byte{23, 240}, 90},
	{"USA", "CA", "San Francisco", "807", "94103", 37.7749, -122.4194, -480, [2]byte{64, 71}, 50},
	{"USA", "NY", "New York", "501", "10001", 40.7128, -74.0060, -300, [2]byte{72, 229}, 110},
	{"USA", "TX", "Houston", "618", "77002", 29.7604, -95.3698, -360, [2]byte{98, 196}, 55},
	{"USA", "TX", "Austin", "635", "78701", 30.2672, -97.7431, -360, [2]byte{70, 112}, 30},
	{"USA", "FL", "Miami", "528", "33101", 25.7617, -80.1918, -300, [2]byte{73, 85}, 40},
	{"USA", "IL", "Chicago", "602", "60601", 41.8781, -87.6298, -360, [2]byte{99, 36}, 50},
	{"USA", "WA", "Seattle", "819", "98101", 47.6062, -122.3321, -480, [2]byte{24, 16}, 30},
	{"CAN", "ON", "Toronto", "", "M5H", 43.6532, -79.3832, -300, [2]byte{99, 230}, 30},
	{"CAN", "QC", "Montreal", "", "H2Y", 45.5019, -73.5674, -300, [2]byte{70, 81}, 15},
	{"GBR", "ENG", "London", "", "EC1A", 51.5072, -0.1276, 0, [2]byte{81, 2}, 60},
	{"GBR", "ENG", "Manchester", "", "M1", 53.4808, -2.2426, 0, [2]byte{86, 13}, 20},
	{"DEU", "BE", "Berlin", "", "10115", 52.5200, 13.4050, 60, [2]byte{91, 64}, 35},
	{"DEU", "BY", "Munich", "", "80331", 48.1351, 11.5820, 60, [2]byte{84, 150}, 25},
	{"FRA", "IDF", "Paris", "", "75001", 48.8566, 2.3522, 60, [2]byte{90, 84}, 35},
	{"ESP", "MD", "Madrid", "", "28001", 40.4168, -3.7038, 60, [2]byte{83, 44}, 20},
	{"JPN", "13", "Tokyo", "", "100-0001", 35.6762, 139.6503, 540, [2]byte{126, 72}, 40},
	{"BRA", "SP", "Sao Paulo", "", "01000-000", -23.5558, -46.6396, -180, [2]byte{177, 32}, 30},
	{"IND", "MH", "Mumbai", "", "400001", 19.0760, 72.8777, 330, [2]byte{49, 36}, 35},
	{"AUS", "NSW", "Sydney", "", "2000", -33.8688, 151.2093, 600, [2]byte{101, 160}, 20},
}

// Size is a creative size in pixels.
type Size struct {
	W, H   int64
	Weight uint32
}

// BannerSizes are the IAB display sizes the generator asks for; with
// VideoSizes they are the sizes the bidder's index is partitioned by
// (bidder.Sizes), so every impression can find candidates.
var BannerSizes = []Size{
	{300, 250, 100}, {728, 90, 50}, {320, 50, 70}, {160, 600, 20}, {300, 600, 25}, {970, 250, 10},
}

// VideoSizes are the player sizes of video impressions.
var VideoSizes = []Size{
	{640, 360, 60}, {1280, 720, 40},
}

// VideoMaxDurations are the maxduration values (seconds) of video impressions.
var VideoMaxDurations = []int64{15, 30, 60}

// Device is one device profile emitted in request.device.
type Device struct {
	UA         string
	OS, OSV    string
	Make       string
	Model      string
	Type       adcom1.DeviceType
	W, H       int64
	PxRatio    float64
	Language   string
	Connection adcom1.ConnectionType
	App        bool // appears in app requests (else only in site requests)
	Site       bool // appears in site requests
	Weight     uint32
}

// Devices is the device table.
var Devices = []Device{
	{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
		"iOS", "17.5", "Apple", "iPhone", adcom1.DevicePhone, 390, 844, 3, "en", adcom1.Connection4G, true, true, 80},
	{"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"iOS", "17.4", "Apple", "iPad", adcom1.DeviceTablet, 820, 1180, 2, "en", adcom1.ConnectionWIFI, true, true, 15},
	{"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36",
		"Android", "14", "Samsung", "SM-S918B", adcom1.DevicePhone, 384, 854, 2.8125, "en", adcom1.Connection5G, true, true, 60},
	{"Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.6312.99 Mobile Safari/537.36",
		"Android", "13", "Google", "Pixel 7", adcom1.DevicePhone, 412, 915, 2.625, "en", adcom1.ConnectionWIFI, true, true, 30},
	{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Windows", "10", "", "", adcom1.DevicePC, 1920, 1080, 1, "en", adcom1.ConnectionEthernet, false, true, 70},
	{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
		"macOS", "14.4", "Apple", "Macintosh", adcom1.DevicePC, 1512, 982, 2, "en", adcom1.ConnectionWIFI, false, true, 35},
	{"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"Linux", "6.8", "", "", adcom1.DevicePC, 2560, 1440, 1, "de", adcom1.ConnectionEthernet, false, true, 5},
	{"Roku/DVP-13.0 (13.0.0.4196-46)",
		"Roku", "13.0", "Roku", "Roku Ultra", adcom1.DeviceTV, 1920, 1080, 1, "en", adcom1.ConnectionWIFI, true, false, 10},
	{"Mozilla/5.0 (Linux; Android 12; AFTKA Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
		"Android", "12", "Amazon", "AFTKA", adcom1.DeviceTV, 1920, 1080, 1, "en", adcom1.ConnectionWIFI, true, false, 8},
}

// Publisher is a seller: a site or an app with its publisher account.
type Publisher struct {
	ID, Name, Domain string
	Cat              []string // IAB content categories (taxonomy 1.0 codes)
	App              bool
	Bundle           string // app only
	StoreURL         string // app only
	Weight           uint32
}

// Publishers is the inventory table.
var Publishers = []Publisher{
	{ID: "pub-news-1", Name: "Daily Herald", Domain: "dailyherald.example", Cat: []string{"IAB12"}, Weight: 60},
	{ID: "pub-news-2", Name: "Metro Times", Domain: "metrotimes.example", Cat: []string{"IAB12", "IAB12-3"}, Weight: 30},
	{ID: "pub-sport-1", Name: "Score Board", Domain: "scoreboard.example", Cat: []string{"IAB17"}, Weight: 35},
	{ID: "pub-tech-1", Name: "Byte Review", Domain: "bytereview.example", Cat: []string{"IAB19"}, Weight: 25},
	{ID: "pub-food-1", Name: "Kitchen Table", Domain: "kitchentable.example", Cat: []string{"IAB8"}, Weight: 15},
	{ID: "pub-auto-1", Name: "Motor Weekly", Domain: "motorweekly.example", Cat: []string{"IAB2"}, Weight: 15},
	{ID: "pub-travel-1", Name: "Far Away", Domain: "faraway.example", Cat: []string{"IAB20"}, Weight: 10},
	{ID: "pub-game-1", Name: "Puzzle Quest", Domain: "puzzlequest.example", Cat: []string{"IAB9-30"}, App: true,
		Bundle: "com.example.puzzlequest", StoreURL: "https://play.google.com/store/apps/details?id=com.example.puzzlequest", Weight: 60},
	{ID: "pub-game-2", Name: "Tower Siege", Domain: "towersiege.example", Cat: []string{"IAB9-30"}, App: true,
		Bundle: "com.example.towersiege", StoreURL: "https://apps.apple.com/app/id1234567890", Weight: 35},
	{ID: "pub-social-1", Name: "Chatter", Domain: "chatter.example", Cat: []string{"IAB14"}, App: true,
		Bundle: "com.example.chatter", StoreURL: "https://play.google.com/store/apps/details?id=com.example.chatter", Weight: 50},
	{ID: "pub-weather-1", Name: "Sky Cast", Domain: "skycast.example", Cat: []string{"IAB15-10"}, App: true,
		Bundle: "com.example.skycast", StoreURL: "https://apps.apple.com/app/id9876543210", Weight: 25},
	{ID: "pub-stream-1", Name: "Stream Box", Domain: "streambox.example", Cat: []string{"IAB1-7"}, App: true,
		Bundle: "com.example.streambox", StoreURL: "https://channelstore.roku.com/details/streambox", Weight: 20},
}

// BlockedCategories are the bcat values a request may carry.
var BlockedCategories = []string{"IAB25", "IAB26", "IAB7-39", "IAB8-18", "IAB9-9"}

// TMaxValues are the tmax values (ms) used when Options.TMax is zero.
var TMaxValues = []int64{80, 100, 120, 150, 200}

// videoMIMEs and videoProtocols are constant per video impression.
var (
	videoMIMEs     = []string{"video/mp4", "video/webm"}
	videoProtocols = []adcom1.MediaCreativeSubtype{2, 3, 5, 6} // VAST 2, 3 and their wrappers
)

package reqgen

import (
	"encoding/hex"
	"strconv"
)

// appendJSON writes the request of d. Field for field it mirrors request(d);
// TestJSONMatchesStruct decodes its output and compares it with request(d).
// All strings come from the vocabulary or from validated options, which hold
// no character JSON needs to escape (TestVocabularyNeedsNoEscaping).
func (c *config) appendJSON(b []byte, d *draw) []byte {
	pub := &Publishers[d.pub]
	dev := &Devices[d.dev]
	geo := &Geos[d.geo]

	b = append(b, `{"id":"`...)
	b = hex.AppendEncode(b, d.id[:])
	b = append(b, `","imp":[`...)
	for k := 0; k < d.nImp; k++ {
		m := &d.imps[k]
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"`...)
		b = append(b, impIDs[k]...)
		b = append(b, '"')
		if m.video {
			sz := VideoSizes[m.size]
			b = append(b, `,"video":{"mimes":[`...)
			for j, s := range videoMIMEs {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendStr(b, s)
			}
			b = append(b, `],"minduration":5,"maxduration":`...)
			b = strconv.AppendInt(b, m.maxDur, 10)
			b = append(b, `,"startdelay":0,"protocols":[`...)
			for j, p := range videoProtocols {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, int64(p), 10)
			}
			b = append(b, `],"w":`...)
			b = strconv.AppendInt(b, sz.W, 10)
			b = append(b, `,"h":`...)
			b = strconv.AppendInt(b, sz.H, 10)
			b = append(b, `,"plcmt":1,"linearity":1,"pos":`...)
			b = strconv.AppendInt(b, int64(m.pos), 10)
			b = append(b, '}')
		} else {
			sz := BannerSizes[m.size]
			b = append(b, `,"banner":{"format":[`...)
			b = appendFormat(b, sz)
			if m.size2 >= 0 {
				b = append(b, ',')
				b = appendFormat(b, BannerSizes[m.size2])
			}
			b = append(b, `],"w":`...)
			b = strconv.AppendInt(b, sz.W, 10)
			b = append(b, `,"h":`...)
			b = strconv.AppendInt(b, sz.H, 10)
			b = append(b, `,"pos":`...)
			b = strconv.AppendInt(b, int64(m.pos), 10)
			b = append(b, '}')
		}
		if m.instl {
			b = append(b, `,"instl":1`...)
		}
		b = append(b, `,"tagid":"`...)
		b = append(b, pub.ID...)
		b = append(b, "-slot-"...)
		b = append(b, impIDs[k]...)
		b = append(b, `","bidfloor":`...)
		b = appendCents(b, m.floor)
		b = append(b, `,"bidfloorcur":"USD"`...)
		if d.secure {
			b = append(b, `,"secure":1`...)
		}
		if m.rewards {
			b = append(b, `,"rwdd":1`...)
		}
		b = append(b, '}')
	}
	b = append(b, ']')

	if pub.App {
		b = append(b, `,"app":{"id":"app-`...)
		b = append(b, pub.ID...)
		b = append(b, `","name":`...)
		b = appendStr(b, pub.Name)
		b = append(b, `,"bundle":`...)
		b = appendStr(b, pub.Bundle)
		b = append(b, `,"domain":`...)
		b = appendStr(b, pub.Domain)
		b = append(b, `,"storeurl":`...)
		b = appendStr(b, pub.StoreURL)
	} else {
		b = append(b, `,"site":{"id":"site-`...)
		b = append(b, pub.ID...)
		b = append(b, `","name":`...)
		b = appendStr(b, pub.Name)
		b = append(b, `,"domain":`...)
		b = appendStr(b, pub.Domain)
	}
	b = append(b, `,"cat":[`...)
	for j, s := range pub.Cat {
		if j > 0 {
			b = append(b, ',')
		}
		b = appendStr(b, s)
	}
	b = append(b, ']')
	if !pub.App {
		b = append(b, `,"page":"`...)
		b = appendPage(b, pub, d.page)
		b = append(b, '"')
		if isHandheld(dev) {
			b = append(b, `,"mobile":1`...)
		}
	}
	b = append(b, `,"publisher":{"id":`...)
	b = appendStr(b, pub.ID)
	b = append(b, `,"name":`...)
	b = appendStr(b, pub.Name)
	b = append(b, `,"domain":`...)
	b = appendStr(b, pub.Domain)
	b = append(b, `}}`...)

	b = append(b, `,"device":{"geo":{"lat":`...)
	b = strconv.AppendFloat(b, geo.Lat, 'f', -1, 64)
	b = append(b, `,"lon":`...)
	b = strconv.AppendFloat(b, geo.Lon, 'f', -1, 64)
	b = append(b, `,"type":2,"country":`...)
	b = appendStr(b, geo.Country)
	b = append(b, `,"region":`...)
	b = appendStr(b, geo.Region)
	if geo.Metro != "" {
		b = append(b, `,"metro":`...)
		b = appendStr(b, geo.Metro)
	}
	b = append(b, `,"city":`...)
	b = appendStr(b, geo.City)
	b = append(b, `,"zip":`...)
	b = appendStr(b, geo.ZIP)
	if geo.UTCOffset != 0 {
		b = append(b, `,"utcoffset":`...)
		b = strconv.AppendInt(b, geo.UTCOffset, 10)
	}
	b = append(b, '}')
	if d.lmt {
		b = append(b, `,"lmt":1`...)
	}
	b = append(b, `,"ua":`...)
	b = appendStr(b, dev.UA)
	b = append(b, `,"ip":"`...)
	b = appendIP(b, geo, d.ip)
	b = append(b, `","devicetype":`...)
	b = strconv.AppendInt(b, int64(dev.Type), 10)
	if dev.Make != "" {
		b = append(b, `,"make":`...)
		b = appendStr(b, dev.Make)
	}
	if dev.Model != "" {
		b = append(b, `,"model":`...)
		b = appendStr(b, dev.Model)
	}
	b = append(b, `,"os":`...)
	b = appendStr(b, dev.OS)
	b = append(b, `,"osv":`...)
	b = appendStr(b, dev.OSV)
	b = append(b, `,"h":`...)
	b = strconv.AppendInt(b, dev.H, 10)
	b = append(b, `,"w":`...)
	b = strconv.AppendInt(b, dev.W, 10)
	b = append(b, `,"pxratio":`...)
	b = strconv.AppendFloat(b, dev.PxRatio, 'f', -1, 64)
	b = append(b, `,"language":`...)
	b = appendStr(b, dev.Language)
	if dev.Connection != 0 {
		b = append(b, `,"connectiontype":`...)
		b = strconv.AppendInt(b, int64(dev.Connection), 10)
	}
	if pub.App {
		b = append(b, `,"ifa":"`...)
		b = appendUUID(b, d.ifa)
		b = append(b, '"')
	}
	b = append(b, '}')

	if d.user >= 0 {
		b = append(b, `,"user":{"id":"`...)
		b = append(b, c.prefix...)
		b = strconv.AppendInt(b, d.user, 10)
		b = append(b, `","yob":`...)
		b = strconv.AppendInt(b, d.yob, 10)
		b = append(b, '}')
	}
	b = append(b, `,"at":1,"tmax":`...)
	b = strconv.AppendInt(b, d.tmax, 10)
	b = append(b, `,"cur":["USD"]`...)
	if d.bcat != 0 {
		b = append(b, `,"bcat":[`...)
		first := true
		for k, cat := range BlockedCategories {
			if d.bcat&(1<<k) != 0 {
				if !first {
					b = append(b, ',')
				}
				first = false
				b = appendStr(b, cat)
			}
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendStr(b []byte, s string) []byte {
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendFormat(b []byte, sz Size) []byte {
	b = append(b, `{"w":`...)
	b = strconv.AppendInt(b, sz.W, 10)
	b = append(b, `,"h":`...)
	b = strconv.AppendInt(b, sz.H, 10)
	return append(b, '}')
}

// appendCents writes a CPM given in cents as a JSON number (0.5, 12.34).
func appendCents(b []byte, c int64) []byte {
	b = strconv.AppendInt(b, c/100, 10)
	frac := c % 100
	switch {
	case frac == 0:
	case frac%10 == 0:
		b = append(b, '.', byte('0'+frac/10))
	default:
		b = append(b, '.', byte('0'+frac/10), byte('0'+frac%10))
	}
	return b
}

func appendPage(b []byte, pub *Publisher, page uint32) []byte {
	b = append(b, "https://"...)
	b = append(b, pub.Domain...)
	b = append(b, "/article/"...)
	return strconv.AppendUint(b, uint64(page), 10)
}

func appendIP(b []byte, geo *Geo, ip [2]byte) []byte {
	b = strconv.AppendUint(b, uint64(geo.IPPrefix[0]), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(geo.IPPrefix[1]), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(ip[0]), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(ip[1]), 10)
}

func appendUUID(b []byte, u [16]byte) []byte {
	b = hex.AppendEncode(b, u[0:4])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[4:6])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[6:8])
	b = append(b, '-')
	b = hex.AppendEncode(b, u[8:10])
	b = append(b, '-')
	return hex.AppendEncode(b, u[10:16])
}

func appendInt(b []byte, n int64) []byte { return strconv.AppendInt(b, n, 10) }

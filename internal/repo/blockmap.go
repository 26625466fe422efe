package repo

import (
	"github.com/pgbr-dev/pgbr/internal/errs"
)

// Block incremental map (docs/block-incremental.md). A file stored with
// block incremental (manifest keys bi/bic/bim) is a series of super blocks
// followed by its block map: for every block of the file, in file order,
// where its content is stored (backup reference, bundle, offset and stored
// size of the super block, block number inside the super block) and its
// checksum (XXH3-128, truncated to bic bytes).

// BlockIncrSizeFactor is the unit of the manifest key bi (block size).
const BlockIncrSizeFactor = 8192

// BlockIncrChecksumSizeDefault is the checksum size when bic is absent.
const BlockIncrChecksumSizeDefault = 6

// blockIncrChecksumSizeMax is the largest checksum (a whole XXH3-128).
const blockIncrChecksumSizeMax = 16

// BlockMapItem is one block of a block incremental file.
type BlockMapItem struct {
	Reference      uint64 // index into the manifest's backup-reference list
	SuperBlockSize uint64 // original bytes in the super block
	BundleID       uint64 // 0 = stored in <name>.pgbi, not in a bundle
	Offset         uint64 // offset of the super block in the bundle / file
	Size           uint64 // stored size of the super block
	Block          uint64 // block number inside the super block
	Checksum       []byte
}

// Flags of the encoded block map.
const (
	bmFlagLast              = 1 // last reference / super block
	bmFlagBundleID          = 2 // first use of a reference: a bundle id follows
	bmFlagOffset            = 4 // an offset (first use) or gap (later use) follows
	bmFlagContinue          = 2 // later use: continues the prior super block of the reference
	bmFlagContinueLast      = 4 // ... and that super block is the last one of this run
	bmReferenceShift        = 3
	bmFlagSizeChange        = 2 // super block: a new super block size follows
	bmFlagTotalOffset       = 4 // super block: block total (and block gap) follow
	bmSuperBlockShift       = 3
	bmFlagSuperSizeRemain   = 1 // super block size is not a multiple of the block size
	bmSuperBlockSizeShift   = 1
	bmFlagBlockTotalOffset  = 1 // block total: a block number gap follows
	bmBlockTotalShift       = 1
	bmVersionMask           = 1
	blockMapMaxVarIntLength = 10
)

type bmReader struct {
	b   []byte
	pos int
}

func (r *bmReader) varint() (uint64, error) {
	var v uint64
	for i := 0; i < blockMapMaxVarIntLength; i++ {
		if r.pos >= len(r.b) {
			return 0, errs.New(errs.Format, "block map is truncated")
		}
		c := r.b[r.pos]
		r.pos++
		if i == blockMapMaxVarIntLength-1 && c > 1 {
			break
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errs.New(errs.Format, "block map has an invalid varint")
}

func (r *bmReader) bytes(n int) ([]byte, error) {
	if len(r.b)-r.pos < n {
		return nil, errs.New(errs.Format, "block map is truncated")
	}
	b := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b, nil
}

type bmRef struct {
	superBlockSize, bundleID, offset, size, block uint64
}

func unzigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

// ParseBlockMap decodes a (decrypted) block map with the file's block size
// (bi × 8192) and checksum size (bic). The checksums of the items point
// into data. Bad input gives a FormatError, never a panic.
func ParseBlockMap(data []byte, blockSize, checksumSize uint64) ([]BlockMapItem, error) {
	if blockSize == 0 || blockSize%BlockIncrSizeFactor != 0 {
		return nil, errs.New(errs.Format, "invalid block incremental block size %d", blockSize)
	}
	if checksumSize == 0 || checksumSize > blockIncrChecksumSizeMax {
		return nil, errs.New(errs.Format, "invalid block incremental checksum size %d", checksumSize)
	}
	r := &bmReader{b: data}
	flags, err := r.varint()
	if err != nil {
		return nil, err
	}
	if flags&bmVersionMask != 0 {
		return nil, errs.New(errs.Format, "block map version must be zero")
	}
	refs := map[uint64]*bmRef{}
	var items []BlockMapItem
	var sizeLast int64
	cs := int(checksumSize)
	for {
		refEnc, err := r.varint()
		if err != nil {
			return nil, err
		}
		item := BlockMapItem{Reference: refEnc >> bmReferenceShift}
		rd := refs[item.Reference]
		cont := false
		if rd == nil {
			if refEnc&bmFlagBundleID != 0 {
				if item.BundleID, err = r.varint(); err != nil {
					return nil, err
				}
			}
			if refEnc&bmFlagOffset != 0 {
				if item.Offset, err = r.varint(); err != nil {
					return nil, err
				}
			}
			item.SuperBlockSize = blockSize
			rd = &bmRef{superBlockSize: blockSize, bundleID: item.BundleID, offset: item.Offset}
			refs[item.Reference] = rd
		} else {
			item.SuperBlockSize = rd.superBlockSize
			item.BundleID = rd.bundleID
			if refEnc&bmFlagContinue != 0 {
				item.Offset = rd.offset
				item.Size = rd.size
				cont = true
			} else {
				item.Offset = rd.offset + rd.size
				if refEnc&bmFlagOffset != 0 {
					gap, err := r.varint()
					if err != nil {
						return nil, err
					}
					item.Offset += gap
				}
				rd.offset = item.Offset
			}
		}
		first := true
		for {
			var sbEnc uint64
			if cont {
				if refEnc&bmFlagContinueLast != 0 {
					sbEnc = bmFlagLast
				}
				sbEnc |= bmFlagTotalOffset
				cont = false
			} else {
				if sbEnc, err = r.varint(); err != nil {
					return nil, err
				}
				item.Size = sbEnc >> bmSuperBlockShift
				if sizeLast != 0 {
					s := unzigzag(item.Size) + sizeLast
					if s <= 0 {
						return nil, errs.New(errs.Format, "block map has an invalid super block size")
					}
					item.Size = uint64(s)
				}
				if sbEnc&bmFlagSizeChange != 0 {
					enc, err := r.varint()
					if err != nil {
						return nil, err
					}
					if enc>>bmSuperBlockSizeShift > (1<<62)/blockSize {
						return nil, errs.New(errs.Format, "block map has an invalid super block size")
					}
					item.SuperBlockSize = (enc >> bmSuperBlockSizeShift) * blockSize
					if enc&bmFlagSuperSizeRemain != 0 {
						rem, err := r.varint()
						if err != nil {
							return nil, err
						}
						if rem >= blockSize {
							return nil, errs.New(errs.Format, "block map has an invalid super block size")
						}
						item.SuperBlockSize += rem
					}
					rd.superBlockSize = item.SuperBlockSize
				}
				if first {
					rd.offset = item.Offset
				} else {
					rd.offset += uint64(sizeLast)
				}
				rd.size = item.Size
				rd.block = 0
			}
			if item.Size == 0 || item.Size > 1<<62 {
				return nil, errs.New(errs.Format, "block map has an invalid super block size")
			}
			sizeLast = int64(item.Size)
			first = false
			var total uint64
			if sbEnc&bmFlagTotalOffset != 0 {
				enc, err := r.varint()
				if err != nil {
					return nil, err
				}
				total = (enc >> bmBlockTotalShift) + 1
				if enc&bmFlagBlockTotalOffset != 0 {
					gap, err := r.varint()
					if err != nil {
						return nil, err
					}
					rd.block += gap
				}
			} else {
				total = item.SuperBlockSize/blockSize + min(item.SuperBlockSize%blockSize, 1)
			}
			if total == 0 || total > uint64(len(data)-r.pos)/checksumSize {
				return nil, errs.New(errs.Format, "block map is truncated")
			}
			blocksInSuper := item.SuperBlockSize/blockSize + min(item.SuperBlockSize%blockSize, 1)
			if rd.block > blocksInSuper || total > blocksInSuper-rd.block {
				return nil, errs.New(errs.Format, "block map refers to a block beyond its super block")
			}
			for i := uint64(0); i < total; i++ {
				item.Block = rd.block + i
				if item.Checksum, err = r.bytes(cs); err != nil {
					return nil, err
				}
				items = append(items, item)
			}
			rd.block += total
			item.Offset += item.Size
			if sbEnc&bmFlagLast != 0 {
				break
			}
		}
		if refEnc&bmFlagLast != 0 {
			break
		}
	}
	if r.pos != len(data) {
		return nil, errs.New(errs.Format, "block map has %d unexpected trailing byte(s)", len(data)-r.pos)
	}
	return items, nil
}

// AppendBlockMap encodes items (one per block of the file, in file order,
// as a backup builds them) in pgBackRest's block map format, the inverse of
// ParseBlockMap: the blocks of a super block are consecutive items with the
// same reference and offset, and the super blocks of a reference come in
// increasing offset order within each run of that reference.
func AppendBlockMap(b []byte, items []BlockMapItem, blockSize, checksumSize uint64) ([]byte, error) {
	if blockSize == 0 || checksumSize == 0 || checksumSize > blockIncrChecksumSizeMax || len(items) == 0 {
		return b, errs.New(errs.Assert, "invalid block map (block size %d, checksum size %d, %d blocks)",
			blockSize, checksumSize, len(items))
	}
	put := func(v uint64) {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	blocksIn := func(superBlockSize uint64) uint64 {
		return superBlockSize/blockSize + min(superBlockSize%blockSize, 1)
	}
	put(0) // flags: version 0
	refs := map[uint64]*bmRef{}
	var sizeLast int64
	i := 0
	for i < len(items) {
		ref := &items[i]
		sbIdx, blkIdx := i, i
		refEnc := uint64(bmFlagLast)
		for i++; i < len(items); i++ {
			if items[i].Reference != ref.Reference {
				refEnc = 0
				break
			}
			if items[i].Offset < ref.Offset {
				return b, errs.New(errs.Assert, "block map offsets of reference %d go backwards", ref.Reference)
			}
		}
		cont := false
		rd := refs[ref.Reference]
		if rd == nil {
			if ref.BundleID > 0 {
				refEnc |= bmFlagBundleID
			}
			if ref.Offset > 0 {
				refEnc |= bmFlagOffset
			}
			put(refEnc | ref.Reference<<bmReferenceShift)
			if refEnc&bmFlagBundleID != 0 {
				put(ref.BundleID)
			}
			if refEnc&bmFlagOffset != 0 {
				put(ref.Offset)
			}
			rd = &bmRef{superBlockSize: blockSize, bundleID: ref.BundleID, offset: ref.Offset}
			refs[ref.Reference] = rd
		} else {
			if ref.BundleID != rd.bundleID || ref.Offset < rd.offset {
				return b, errs.New(errs.Assert, "block map reference %d changes bundle or goes backwards", ref.Reference)
			}
			if ref.Offset == rd.offset {
				refEnc |= bmFlagContinue
				cont = true
			} else {
				if ref.Offset > rd.offset+rd.size {
					refEnc |= bmFlagOffset
				}
				put(refEnc | ref.Reference<<bmReferenceShift)
				if refEnc&bmFlagOffset != 0 {
					put(ref.Offset - (rd.offset + rd.size))
				}
				rd.offset, rd.size = ref.Offset, ref.Size
			}
		}
		runStart := sbIdx
		for sbIdx < i {
			sb := &items[sbIdx]
			if sbIdx > runStart && sb.Offset != items[sbIdx-1].Offset && sb.Offset != items[sbIdx-1].Offset+items[sbIdx-1].Size {
				return b, errs.New(errs.Assert, "block map super blocks of reference %d are not contiguous", ref.Reference)
			}
			sbEnc := uint64(bmFlagLast)
			for sbIdx++; sbIdx < i; sbIdx++ {
				if items[sbIdx].Offset != sb.Offset {
					sbEnc = 0
					break
				}
			}
			total := uint64(sbIdx - blkIdx)
			if cont || sb.Block != 0 || total != blocksIn(sb.SuperBlockSize) {
				sbEnc |= bmFlagTotalOffset
			}
			if cont {
				if sbEnc&bmFlagLast != 0 {
					refEnc |= bmFlagContinueLast
				}
				put(refEnc | ref.Reference<<bmReferenceShift)
				cont = false
			} else {
				rd.offset, rd.size, rd.block = sb.Offset, sb.Size, 0
				if sb.SuperBlockSize != rd.superBlockSize {
					sbEnc |= bmFlagSizeChange
				}
				size := sb.Size
				if sizeLast != 0 {
					d := int64(sb.Size) - sizeLast
					size = uint64(d<<1) ^ uint64(d>>63)
				}
				put(sbEnc | size<<bmSuperBlockShift)
				if sbEnc&bmFlagSizeChange != 0 {
					enc := (sb.SuperBlockSize / blockSize) << bmSuperBlockSizeShift
					if sb.SuperBlockSize%blockSize != 0 {
						enc |= bmFlagSuperSizeRemain
					}
					put(enc)
					if enc&bmFlagSuperSizeRemain != 0 {
						put(sb.SuperBlockSize % blockSize)
					}
					rd.superBlockSize = sb.SuperBlockSize
				}
			}
			sizeLast = int64(sb.Size)
			if sb.Block < rd.block {
				return b, errs.New(errs.Assert, "block map blocks of reference %d go backwards", ref.Reference)
			}
			if sbEnc&bmFlagTotalOffset != 0 {
				enc := (total - 1) << bmBlockTotalShift
				if sb.Block > rd.block {
					enc |= bmFlagBlockTotalOffset
				}
				put(enc)
				if enc&bmFlagBlockTotalOffset != 0 {
					put(sb.Block - rd.block)
					rd.block = sb.Block
				}
			}
			rd.block += total
			for ; blkIdx < sbIdx; blkIdx++ {
				if uint64(len(items[blkIdx].Checksum)) != checksumSize {
					return b, errs.New(errs.Assert, "block %d has a checksum of %d bytes, expected %d",
						blkIdx, len(items[blkIdx].Checksum), checksumSize)
				}
				b = append(b, items[blkIdx].Checksum...)
			}
		}
	}
	return b, nil
}
